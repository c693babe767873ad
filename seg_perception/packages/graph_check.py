"""Checks of a package's ONNX graph that its checksum cannot make: finite weights, and the
number of classes the graph decides among against the manifest's label set.

They need the ``onnx`` package: ``packages.loading.load_model_package`` runs them where it is
installed (a robot with only onnxruntime or TensorRT skips them; ``seg-perception export``
and the importers, which always have it, refused such graphs before writing them).
"""

from __future__ import annotations

from typing import List, Optional

from ..manifest import ModelManifest

#: Operators between the class decision (ArgMax) and the ``semantic`` output that keep the
#: class ids as they are.
_PASS_THROUGH = ('Cast', 'Squeeze', 'Unsqueeze', 'Reshape', 'Identity', 'Flatten',
                 'Transpose')


def nonfinite_initializers(model) -> List[str]:
    """Names of the graph's floating-point initializers that hold NaN, or infinity in a
    tensor of more than one value (a lone -inf is a legitimate fill constant, a weight
    tensor holding infinity is what a diverged training run leaves)."""
    import numpy as np
    from onnx import numpy_helper
    bad = []
    for initializer in model.graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.dtype.kind != 'f':
            continue
        if np.isnan(values).any() or (values.size > 1 and np.isinf(values).any()):
            bad.append(initializer.name)
    return bad


def graph_class_count(model, inferred: bool = False) -> Optional[int]:
    """The number of classes the graph's ``semantic`` output is chosen among.

    The classifier's channel count is not an output of a fused graph; it is the size of the
    class axis of the ArgMax that ``semantic`` comes from (through casts and reshapes), read
    from ONNX shape inference (on a copy without weight data unless ``inferred``: ``model``
    is then already shape-inferred).

    Returns:
        The count, or None when the graph decides otherwise (an imported graph that
        outputs class ids) or the axis has no static size.
    """
    import onnx
    producers = {output: node for node in model.graph.node for output in node.output}
    name, node = 'semantic', producers.get('semantic')
    while node is not None and node.op_type in _PASS_THROUGH and node.input:
        name = node.input[0]
        node = producers.get(name)
    if node is None or node.op_type != 'ArgMax':
        return None
    axis = next((onnx.helper.get_attribute_value(a) for a in node.attribute
                 if a.name == 'axis'), 0)
    if not inferred:
        from ..export.tensorrt_check import weightless_copy
        try:
            model = onnx.shape_inference.infer_shapes(weightless_copy(model))
        except onnx.shape_inference.InferenceError:
            return None
    values = list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
    value = next((v for v in values if v.name == node.input[0]), None)
    if value is None:
        return None
    dims = value.type.tensor_type.shape.dim
    if not dims or not -len(dims) <= axis < len(dims):
        return None
    dim = dims[axis]
    return dim.dim_value if dim.HasField('dim_value') and dim.dim_value > 0 else None


def check_graph(model, manifest: ModelManifest, source: str) -> None:
    """Refuse a loaded ONNX ``model`` whose weights are not finite, or whose class count
    differs from the manifest's label set (names would be given to the wrong classes).

    Raises:
        PackageError: One line naming ``source`` and what differs.
    """
    from .loading import PackageError
    bad = nonfinite_initializers(model)
    if bad:
        raise PackageError(
            f'{source}: the graph weights are not finite: {len(bad)} initializers hold NaN or '
            f'infinity (first {bad[0]}); the training that made them diverged')
    classes = graph_class_count(model)
    labels = manifest.label_set
    if classes is not None and classes != labels.num_classes:
        raise PackageError(
            f"{source}: the graph decides among {classes} classes but the manifest's label "
            f'set {labels.name!r} has {labels.num_classes}; it is not the label set this graph '
            'was made with')


def check_graph_file(onnx_path: str, manifest: ModelManifest) -> bool:
    """``check_graph`` on the file ``onnx_path`` when ``onnx`` is installed.

    Returns:
        Whether the checks ran (False without the ``onnx`` package).
    """
    try:
        import onnx
    except ImportError:
        return False
    from .loading import PackageError
    try:
        model = onnx.load(onnx_path)
    except Exception as error:  # noqa: BLE001 - protobuf and onnx raise many types
        raise PackageError(f'{onnx_path}: not a readable ONNX graph: '
                           f'{type(error).__name__}: {error}') from None
    check_graph(model, manifest, onnx_path)
    return True
