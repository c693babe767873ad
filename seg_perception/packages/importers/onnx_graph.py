"""Graph surgery for ``import onnx``: the user's graph fixed to one size, cut down to its
segmentation output, brought to the package opset and joined with the adapter and tail.

All of it works on node and tensor *names* (protobuf containers edited in place, weights
moved by the C++ side of ``onnx``), never on weight bytes in Python, so a graph of hundreds
of megabytes is handled in about the time it takes to copy it a few times.
"""

from __future__ import annotations

from typing import Dict, Iterator, Tuple

from . import ModelImportError
from .onnx_inspect import image_input, InputFacts, opset_of, value_dims

#: Prefix of every node, tensor and initializer of the user's graph in the package graph.
SOURCE_PREFIX = 'source/'
#: Highest opset the tail (torch's TorchScript exporter) can be written at.
MAX_TAIL_OPSET = 20
#: Lowest opset kept when converting to the package opset fails.
MIN_KEPT_OPSET = 11

Signature = Tuple[int, Tuple[int, ...]]


def fix_input(model, facts: InputFacts) -> None:
    """Give the image input its static shape and drop the shape annotations made for the
    dynamic one (``value_info``, output shapes; element types stay) for inference to redo."""
    value = image_input(model)
    for dim, size in zip(value.type.tensor_type.shape.dim, facts.static_shape):
        dim.Clear()
        dim.dim_value = size
    model.graph.ClearField('value_info')
    for output in model.graph.output:
        output.type.tensor_type.ClearField('shape')


def output_signatures(model, facts: InputFacts) -> Dict[str, Signature]:
    """(element type, static shape) of every graph output once the input is fixed.

    ONNX shape inference with data propagation (on a copy without weight bytes) first; one
    ONNX Runtime run on a zero image when it leaves a dimension open (a Resize whose sizes
    come from Shape ops it cannot follow, a custom operator).
    """
    import onnx

    from ...export.tensorrt_check import weightless_copy
    try:
        inferred = onnx.shape_inference.infer_shapes(weightless_copy(model), data_prop=True)
        signatures = {v.name: (v.type.tensor_type.elem_type, value_dims(v))
                      for v in inferred.graph.output if v.type.tensor_type.HasField('shape')}
    except Exception:  # noqa: BLE001 - inference is a first try; the run below decides
        signatures = {}
    if len(signatures) == len(model.graph.output) and all(
            elem and None not in dims for elem, dims in signatures.values()):
        return signatures
    return _run_for_shapes(model, facts)


def _run_for_shapes(model, facts: InputFacts) -> Dict[str, Signature]:
    import numpy as np
    from onnx import helper
    try:
        import onnxruntime
    except ImportError:
        raise ModelImportError('shape inference cannot tell the output shapes and onnxruntime '
                               'is not installed to run the graph once') from None
    image = np.zeros(facts.static_shape, dtype=helper.tensor_dtype_to_np_dtype(facts.elem_type))
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=['CPUExecutionProvider'])
        values = session.run(None, {facts.name: image})
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own pybind types
        raise ModelImportError(f'onnxruntime cannot run the graph at {facts.width}x'
                               f'{facts.height}: {first_line(error)}') from None
    return {output.name: (helper.np_dtype_to_tensor_dtype(value.dtype), tuple(value.shape))
            for output, value in zip(session.get_outputs(), values)}


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f'{type(error).__name__}: {text.splitlines()[0] if text else ""}'


def _used_names(node) -> Iterator[str]:
    """Tensor names ``node`` reads, including those its subgraphs read from outside."""
    yield from node.input
    for attribute in node.attribute:
        graphs = ([attribute.g] if attribute.HasField('g') else []) + list(attribute.graphs)
        for graph in graphs:
            for inner in graph.node:
                yield from _used_names(inner)


def keep_only_output(model, name: str, shape: Tuple[int, ...]) -> int:
    """Cut the graph down to what computes output ``name`` and give it ``shape``.

    Drops the other outputs (an auxiliary head...), the nodes and initializers only they
    needed, and graph inputs that are initializers (old exporters list weights as inputs).

    Returns:
        The number of nodes removed.
    """
    graph = model.graph
    producers = {out: index for index, node in enumerate(graph.node) for out in node.output}
    keep, stack = set(), [name]
    while stack:
        index = producers.get(stack.pop())
        if index is None or index in keep:
            continue
        keep.add(index)
        stack.extend(_used_names(graph.node[index]))
    removed = len(graph.node) - len(keep)
    for index in reversed(range(len(graph.node))):
        if index not in keep:
            del graph.node[index]
    used = {n for node in graph.node for n in _used_names(node)} | {name}
    _delete_where(graph.initializer, lambda init: init.name not in used)
    initializers = {init.name for init in graph.initializer}
    _delete_where(graph.input, lambda value: value.name in initializers)
    _delete_where(graph.output, lambda value: value.name != name)
    dims = graph.output[0].type.tensor_type.shape.dim
    del dims[:]
    for size in shape:
        dims.add().dim_value = int(size)
    return removed


def _delete_where(container, condition) -> None:
    for index in reversed(range(len(container))):
        if condition(container[index]):
            del container[index]


def convert_opset(model, target: int) -> Tuple[object, int, str]:
    """``model`` at opset ``target`` (``onnx.version_converter``), or at its own opset when
    that fails and the tail can still be written there.

    Returns:
        ``(model, opset, note)``; the note is empty when nothing changed.
    """
    from onnx import version_converter
    source = opset_of(model)
    if source == target:
        return model, target, ''
    try:
        converted = version_converter.convert_version(model, target)
    except Exception as error:  # noqa: BLE001 - the converter raises RuntimeError/ValueError
        if MIN_KEPT_OPSET <= source <= MAX_TAIL_OPSET:
            return model, source, (f'opset {source} kept: onnx.version_converter cannot '
                                   f'convert it to {target} ({first_line(error)})')
        raise ModelImportError(f'opset {source} cannot be converted to {target}: '
                               f'{first_line(error)}') from None
    return converted, target, f'opset {source} -> {target} (onnx.version_converter)'


def ir_version_for(model) -> int:
    """The lowest IR version the model's opsets need (TensorRT 8.5's parser refuses IR
    versions newer than its onnx; 8 for opset 17, like the project's own exports)."""
    from onnx import helper
    return max(4, helper.find_min_ir_version_for(list(model.opset_import),
                                                 ignore_unknown=True))


def merge_package_graph(adapter, source, tail, adapter_output: str, tail_input: str):
    """One graph: ``adapter`` -> ``source`` (names prefixed ``source/``) -> ``tail``.

    ``source`` is renamed in place; all three must share the default-domain opset. The IR
    version is the lowest the opsets need, or the source's when its graph needs more.
    """
    import onnx
    input_name = image_input(source).name
    output_name = source.graph.output[0].name
    onnx.compose.add_prefix(source, SOURCE_PREFIX, inplace=True)
    source_ir = source.ir_version
    for ir_version in sorted({ir_version_for(source), max(source_ir, ir_version_for(source))}):
        for model in (adapter, source, tail):
            model.ir_version = ir_version
        try:
            front = onnx.compose.merge_models(
                adapter, source, io_map=[(adapter_output, SOURCE_PREFIX + input_name)])
            return onnx.compose.merge_models(
                front, tail, io_map=[(SOURCE_PREFIX + output_name, tail_input)],
                producer_name='seg-perception import onnx')
        except (onnx.checker.ValidationError, ValueError) as error:
            failure = error
    raise ModelImportError(f'the joined graph is not valid ONNX: {first_line(failure)}')
