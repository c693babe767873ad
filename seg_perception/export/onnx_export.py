"""Torch -> ONNX export of ``graph.FusedSegmentationGraph`` into a model package.

``export_model_package`` writes a model package directory (``model.onnx``, ``weights.pt``,
``manifest.yaml``), every file atomically, the manifest last: an export that fails before the
end leaves no half-written file (a full disk leaves the directory as it was), and a package
whose ONNX file does not match its manifest's checksum is refused by
``packages.loading.load_model_package``.

The ONNX file comes from torch's TorchScript exporter (``torch.onnx.export(dynamo=False)``,
still present in torch 2.13 though deprecated): it produces a static opset-17 graph with
constant folding and needs no onnxscript. The graph is then checked with ``onnx.checker``
and strict shape inference, and its inputs/outputs are compared with the
manifest's contract before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
from typing import Dict, List, Sequence, Tuple
import warnings

import torch
from torch import nn

from ..manifest import MANIFEST_FILE, ModelManifest
from ..packages.atomic import atomic_write_files
from .graph import ExportError, FusedSegmentationGraph
from .tensorrt_check import weightless_copy

ONNX_FILE = 'model.onnx'
WEIGHTS_FILE = 'weights.pt'
DEFAULT_OPSET = 17
#: Opsets the TorchScript exporter and every supported TensorRT parser accept.
SUPPORTED_OPSETS = tuple(range(13, 18))

#: ONNX element type of every graph output (TensorProto enum values: 1 = FLOAT, 6 = INT32).
OUTPUT_ELEMENT_TYPES: Dict[str, int] = {
    'semantic': 6, 'confidence': 1, 'instance': 6, 'panoptic': 6, 'instance_score': 1,
}


def _example_inputs(manifest: ModelManifest) -> Tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand((manifest.batch, 3, manifest.input_height, manifest.input_width),
                       generator=generator) * 255.0
    if manifest.is_panoptic:
        return image, torch.tensor([manifest.postprocess.center_threshold], dtype=torch.float32)
    return (image,)


def export_onnx_bytes(graph: FusedSegmentationGraph, manifest: ModelManifest,
                      opset: int = DEFAULT_OPSET) -> bytes:
    """Export ``graph`` to a validated, serialised ONNX model (nothing is written to disk).

    Per-channel PReLUs are exported as ``models.layers.DepthwisePReLU`` (the same function,
    much faster on ONNX Runtime's CPU provider); ``graph`` itself is not changed.
    """
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(
            f'opset {opset} is not supported; use one of {", ".join(map(str, SUPPORTED_OPSETS))} '
            f'(17 for TensorRT 8.5 and 10.x alike)')
    from ..models.layers import export_activations
    graph = export_activations(graph).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo (needs onnxscript); it is
        # the one that produces a clean static opset-17 graph with what the venv has.
        warnings.simplefilter('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        try:
            torch.onnx.export(
                graph, _example_inputs(manifest), buffer, dynamo=False,
                opset_version=opset, input_names=list(manifest.input_names),
                output_names=list(manifest.output_names), do_constant_folding=True,
                export_params=True, keep_initializers_as_inputs=False)
        except Exception as error:  # noqa: BLE001 - torch raises many unrelated types here
            raise ExportError(
                f'torch.onnx.export of {manifest.architecture} ({manifest.task}) failed: '
                f'{type(error).__name__}: {error}') from error
    return validate_onnx(buffer.getvalue(), manifest)


def _value_signature(value) -> Tuple[int, List[object]]:
    tensor_type = value.type.tensor_type
    dims = [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
            for d in tensor_type.shape.dim]
    return tensor_type.elem_type, dims


def expected_signature(manifest: ModelManifest) -> Dict[str, Tuple[int, List[int]]]:
    """ONNX (element type, shape) of every graph input and output the manifest promises."""
    batch, height, width = manifest.batch, manifest.input_height, manifest.input_width
    signature: Dict[str, Tuple[int, List[int]]] = {'image': (1, [batch, 3, height, width])}
    if manifest.is_panoptic:
        signature['center_threshold'] = (1, [1])
    for name in manifest.output_names:
        shape = [batch, height, width]
        if name == 'instance_score':
            shape = [batch, manifest.postprocess.top_k]
        signature[name] = (OUTPUT_ELEMENT_TYPES[name], shape)
    return signature


def validate_onnx(model_bytes: bytes, manifest: ModelManifest) -> bytes:
    """Check a serialised graph against ONNX and the manifest contract; return the bytes.

    Runs ``onnx.checker``, refuses initializers holding NaN or infinity
    (``packages.graph_check``), runs strict, type-checked shape inference, then compares
    graph input and output names, element types and static shapes with the manifest.
    ``instance_score`` may have fewer than ``top_k`` columns when the grouping grid has fewer
    pixels (the post-processing clamps K to the grid size).

    Raises:
        ExportError: naming the tensor and what differs.
    """
    import onnx
    model = onnx.load_from_string(model_bytes)
    try:
        # Structural check, then strict type-checked shape inference (what
        # check_model(full_check=True) does) on a copy without the weight data.
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(
            weightless_copy(model), check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f'exported graph is not valid ONNX: {error}') from None
    from ..packages.graph_check import nonfinite_initializers
    bad = nonfinite_initializers(model)
    if bad:
        raise ExportError(f'the graph weights are not finite: {len(bad)} initializers hold NaN '
                          f'or infinity (first {bad[0]})')
    from ..packages.graph_check import graph_class_count
    classes = graph_class_count(inferred, inferred=True)
    if classes is not None and classes != manifest.label_set.num_classes:
        raise ExportError(f'the graph decides among {classes} classes, the label set '
                          f'{manifest.label_set.name!r} has {manifest.label_set.num_classes}')
    expected = expected_signature(manifest)
    actual_names = [v.name for v in inferred.graph.input] + [v.name for v in inferred.graph.output]
    wanted_names = list(manifest.input_names) + list(manifest.output_names)
    if actual_names != wanted_names:
        raise ExportError(
            f'exported graph has inputs/outputs {actual_names}, the manifest needs {wanted_names} '
            '(an input the network ignores is dropped by the exporter)')
    for value in list(inferred.graph.input) + list(inferred.graph.output):
        elem_type, dims = _value_signature(value)
        want_type, want_dims = expected[value.name]
        type_name = onnx.TensorProto.DataType.Name
        if elem_type != want_type:
            raise ExportError(
                f'graph tensor {value.name!r} is {type_name(elem_type)}, the contract needs '
                f'{type_name(want_type)}')
        if value.name == 'instance_score' and len(dims) == 2 and isinstance(dims[1], int) \
                and 0 < dims[1] <= want_dims[1]:
            want_dims = [want_dims[0], dims[1]]
        if dims != want_dims:
            raise ExportError(
                f'graph tensor {value.name!r} has shape {dims}, the contract needs static '
                f'{want_dims}')
    return model_bytes


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def state_dict_bytes(network: nn.Module, fp16: bool = False) -> bytes:
    """``torch.save`` of the network's state dict; floating tensors in FP16 when ``fp16``.

    FP16 storage halves the file (shipped models are size-limited); loading copies the values
    back into the FP32 parameters, so inference precision is unchanged apart from rounding.
    """
    state = {}
    for key, value in network.state_dict().items():
        value = value.detach().cpu()
        if fp16 and value.is_floating_point():
            value = value.half()
        state[key] = value.contiguous()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def check_finite_weights(network: nn.Module, fp16: bool = False) -> None:
    """Refuse a network whose weights hold NaN or infinity (a diverged training run), or,
    with ``fp16``, values beyond float16's range (they would be stored as infinity).

    Raises:
        ExportError: One line naming how many tensors are affected and the first of them.
    """
    state = network.state_dict()
    bad = [name for name, value in state.items()
           if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        raise ExportError(
            f'the network weights are not finite: {len(bad)} of {len(state)} tensors hold NaN '
            f'or infinity (first {bad[0]}); the training that made them diverged (lower its '
            'learning rate); nothing was written')
    if fp16:
        limit = float(torch.finfo(torch.float16).max)
        big = [name for name, value in state.items()
               if value.is_floating_point() and value.numel()
               and float(value.detach().abs().max()) > limit]
        if big:
            raise ExportError(
                f'{len(big)} weight tensors exceed the float16 range (first {big[0]}); '
                'store float32 weights instead; nothing was written')


def export_model_package(network: nn.Module, manifest: ModelManifest, out_dir: str,
                         opset: int = DEFAULT_OPSET, fp16_weights: bool = False,
                         save_weights: bool = True) -> ModelManifest:
    """Export ``network`` with fused post-processing into the model package ``out_dir``.

    Args:
        network: Registry network for ``manifest.architecture`` (put in eval mode for the
            export; its training flag is restored afterwards).
        manifest: Description of the package; ``onnx_file``, ``weights_file``,
            ``onnx_sha256`` and ``opset`` are filled in here.
        out_dir: Package directory (created if missing; existing package files are replaced).
        opset: ONNX opset (17 unless you know better).
        fp16_weights: Store ``weights.pt`` in FP16 (half the size).
        save_weights: Write ``weights.pt`` (needed by the torch backend and for fine-tuning).

    Returns:
        The manifest that was written to ``out_dir/manifest.yaml``.

    Raises:
        ExportError: export failed, the weights are not finite (``check_finite_weights``) or
            the graph breaks the contract; nothing was written.
        OSError: the disk is full or read-only; the package directory is as it was.
    """
    check_finite_weights(network, fp16_weights and save_weights)
    manifest = dataclasses.replace(
        manifest, onnx_file=ONNX_FILE, weights_file=WEIGHTS_FILE if save_weights else None,
        opset=opset, onnx_sha256=None, info=dict(manifest.info))
    was_training = network.training
    network.eval()
    try:
        graph = FusedSegmentationGraph(network, manifest).eval()
        with torch.no_grad():
            onnx_bytes = export_onnx_bytes(graph, manifest, opset)
        weights = state_dict_bytes(network, fp16=fp16_weights) if save_weights else None
    finally:
        network.train(was_training)
    manifest.onnx_sha256 = sha256_bytes(onnx_bytes)
    manifest.info['exporter'] = f'torch {torch.__version__} TorchScript ONNX exporter'
    if save_weights:
        manifest.info['weights_dtype'] = 'float16' if fp16_weights else 'float32'
    # All bytes exist before the first write, and every file is on disk before any replaces
    # its destination (a full or read-only disk changes nothing); the manifest is renamed
    # last, so a crash between the renames leaves a package that fails its checksum check.
    import yaml
    files = [(os.path.join(out_dir, ONNX_FILE), onnx_bytes)]
    if weights is not None:
        files.append((os.path.join(out_dir, WEIGHTS_FILE), weights))
    files.append((os.path.join(out_dir, MANIFEST_FILE),
                  yaml.safe_dump(manifest.to_dict(), sort_keys=False).encode('utf-8')))
    created = not os.path.isdir(out_dir)
    try:
        atomic_write_files(files)
    except OSError:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(out_dir)  # the directory this export made, still empty
        raise
    return manifest


def describe_graph(manifest: ModelManifest) -> Sequence[str]:
    """One line per graph input/output: name, dtype, shape (for CLI output and logs)."""
    type_names = {1: 'float32', 6: 'int32'}
    return [f'{name}: {type_names[elem]} {tuple(dims)}'
            for name, (elem, dims) in expected_signature(manifest).items()]
