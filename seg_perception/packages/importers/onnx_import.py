"""``import onnx``: any semantic segmentation ONNX graph -> a model package.

The package holds ONE graph that keeps the graph contract of ``manifest``::

    image float32 (B, 3, H, W) raw RGB 0..255
      -> input adapter      /255, (x - mean) / std, RGB -> BGR, NCHW -> NHWC, cast
      -> the user's graph   names prefixed ``source/``, fixed to B x H x W, at opset 17
      -> tail               upsampling + FusedPostprocess (semantic), or cast of class ids
      -> semantic int32 (B, H, W), confidence float32 (B, H, W)

and a manifest (task ``semantic``, architecture ``onnx``: there is no torch network, so
instances come from connected components downstream) that records the source file's
sha256, every flag and what was inferred. Everything is checked (the project's ONNX
contract check, one ONNX Runtime run) before anything is written, through
``staged_package``: a failed import leaves nothing at ``--out``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ...labels import LabelSet
from ...manifest import ModelManifest
from ..atomic import atomic_write_bytes
from ..loading import file_sha256
from . import ModelImportError, staged_package
from .onnx_adapter import (
    ADAPTER_OUTPUT,
    class_id_tail,
    input_adapter,
    logits_tail,
    Preprocessing,
    TAIL_INPUT,
)
from .onnx_graph import (
    convert_opset,
    first_line,
    fix_input,
    keep_only_output,
    merge_package_graph,
    output_signatures,
)
from .onnx_inspect import (
    choose_output,
    format_dims,
    InputFacts,
    inspect_input,
    load_source,
    opset_of,
    OutputFacts,
    type_name,
)

#: ``ModelManifest.architecture`` of imported packages: no registered torch network.
ARCHITECTURE = 'onnx'


@dataclass
class OnnxImportOptions:
    """The importer's flags (``seg-perception import onnx --help``).

    Attributes:
        labels: Label set of the model's classes; ``labels_name`` is how it was given
            (``voc``, ``my_labels.yaml``), for messages and the manifest.
        input_size: ``--input-size`` as (width, height), required for dynamic H / W.
        layout: ``nchw`` / ``nhwc``, or None to infer it from the input shape.
        preprocessing: Channel order, input range, mean and std.
        output: Name of the segmentation output, or None to pick the one that fits.
        name: Package name; None uses the file name.
        flags: The command line as given, recorded in the manifest.
    """

    labels: LabelSet
    labels_name: str = 'cityscapes'
    input_size: Optional[Tuple[int, int]] = None
    layout: Optional[str] = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    output: Optional[str] = None
    name: Optional[str] = None
    flags: Dict[str, Any] = field(default_factory=dict)


@dataclass
class OnnxImportResult:
    """What ``import_onnx`` wrote and found.

    Attributes:
        manifest: The written manifest; ``package_dir`` the package directory.
        lines: What was read and inferred, one line each (the command prints them).
        tensorrt_issues: ``check_tensorrt_compatibility`` of the package graph, as text
            (empty: nothing blocks TensorRT 8.5 / 10).
        seconds: Wall time of the import.
    """

    manifest: ModelManifest
    package_dir: str
    lines: List[str]
    tensorrt_issues: List[str]
    seconds: float


def _package_batch() -> int:
    """The batch the project's packages use when the source leaves it open (manifest
    default)."""
    return next(f.default for f in fields(ModelManifest) if f.name == 'batch')


def _default_name(source: str) -> str:
    stem = os.path.splitext(os.path.basename(source))[0]
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', stem) or 'imported'


def import_onnx(source: str, out_dir: str, options: OnnxImportOptions,
                log: Callable[[str], None] = lambda line: None) -> OnnxImportResult:
    """Import the ONNX file ``source`` as the model package ``out_dir``.

    Args:
        source: Path to the ``.onnx`` file (external data files beside it).
        out_dir: Package directory; must not exist or be empty.
        options: The flags.
        log: Called with each line of what was read and inferred, as it is found.

    Raises:
        ModelImportError: One line naming the problem and the flag to set; nothing was
            written.
    """
    from ...export.onnx_export import DEFAULT_OPSET, ONNX_FILE, sha256_bytes
    from ...export.tensorrt_check import check_tensorrt_compatibility
    start = time.perf_counter()
    lines: List[str] = []

    def say(line: str) -> None:
        lines.append(line)
        log(line)

    with staged_package(out_dir) as scratch:
        model, external = load_source(source)
        source_opset, source_ir = opset_of(model), model.ir_version
        say(_describe_source(source, model, external))
        facts = inspect_input(model, options.input_size, options.layout, _package_batch())
        say(facts.describe())
        say(options.preprocessing.describe(facts))
        fix_input(model, facts)
        output = choose_output(model, output_signatures(model, facts), facts,
                               options.labels.num_classes, options.labels_name, options.output)
        say(output.describe(facts))
        removed = keep_only_output(model, output.name, output.shape)
        if removed:
            say(f'dropped {removed} node(s) that only fed other outputs')
        model, opset, note = convert_opset(model, DEFAULT_OPSET)
        if note:
            say(note)
        adapter = input_adapter(options.preprocessing, facts, opset)
        tail = class_id_tail(output, facts, opset) if output.kind == 'class_ids' else \
            logits_tail(output, facts, options.labels, opset)
        merged = merge_package_graph(adapter, model, tail, ADAPTER_OUTPUT, TAIL_INPUT)
        model_bytes = merged.SerializeToString()
        manifest = _manifest(source, options, facts, output, opset, external)
        manifest.info['source'].update(opset=source_opset, ir_version=source_ir)
        manifest.info['opset_conversion'] = note or 'none'
        _check_package_graph(model_bytes, manifest)
        manifest.onnx_sha256 = sha256_bytes(model_bytes)
        atomic_write_bytes(os.path.join(scratch, ONNX_FILE), model_bytes)
        manifest.save(scratch)
    issues = [str(issue) for issue in check_tensorrt_compatibility(merged)]
    return OnnxImportResult(manifest=manifest, package_dir=os.path.abspath(out_dir), lines=lines,
                            tensorrt_issues=issues, seconds=time.perf_counter() - start)


def _describe_source(source: str, model, external: Dict[str, int]) -> str:
    producer = ' '.join(p for p in (model.producer_name, model.producer_version) if p)
    size = os.path.getsize(source) + sum(external.values())
    data = f', external data {", ".join(sorted(external))}' if external else ''
    return (f'source {source}: opset {opset_of(model)}, IR {model.ir_version}, producer '
            f'{producer or "unknown"}, {len(model.graph.node)} nodes, {size / 1e6:.1f} MB{data}')


def _manifest(source: str, options: OnnxImportOptions, facts: InputFacts, output: OutputFacts,
              opset: int, external: Dict[str, int]) -> ModelManifest:
    from ...export.onnx_export import ONNX_FILE
    pre = options.preprocessing
    mean, std = pre.manifest_mean_std()
    name = options.name or _default_name(source)
    resolved = {
        'labels': options.labels_name, 'input_size': f'{facts.width}x{facts.height}',
        'layout': facts.layout, 'channel_order': pre.channel_order,
        'input_range': pre.input_range,
        'mean': None if pre.mean is None else [float(v) for v in pre.mean],
        'std': None if pre.std is None else [float(v) for v in pre.std],
        'output': output.name, 'name': name,
    }
    info: Dict[str, Any] = {
        'importer': 'seg-perception import onnx',
        'source': {
            'file': os.path.abspath(source), 'sha256': file_sha256(source),
            'external_data': {location: file_sha256(os.path.join(os.path.dirname(
                os.path.abspath(source)), location)) for location in sorted(external)},
            'input': facts.name, 'input_shape': format_dims(facts.dims),
            'input_type': type_name(facts.elem_type), 'output': output.name,
            'output_shape': list(output.shape), 'output_type': type_name(output.elem_type),
            'output_kind': output.kind, 'output_layout': output.layout or None,
        },
        'flags': dict(options.flags),
        'resolved': resolved,
    }
    return ModelManifest(
        name=name, architecture=ARCHITECTURE, task='semantic', input_height=facts.height,
        input_width=facts.width, batch=facts.batch, mean=mean, std=std, channel_order='RGB',
        label_set=options.labels, onnx_file=ONNX_FILE, weights_file=None, opset=opset,
        info=info)


def _check_package_graph(model_bytes: bytes, manifest: ModelManifest) -> None:
    """The project's ONNX contract check, then one ONNX Runtime run on a zero image."""
    import numpy as np

    from ...export.graph import ExportError
    from ...export.onnx_export import validate_onnx
    try:
        validate_onnx(model_bytes, manifest)
    except ExportError as error:
        raise ModelImportError(f'the package graph breaks the contract: {error}') from None
    try:
        import onnxruntime
    except ImportError:
        return
    image = np.zeros((manifest.batch, 3, manifest.input_height, manifest.input_width),
                     dtype=np.float32)
    try:
        session = onnxruntime.InferenceSession(model_bytes, providers=['CPUExecutionProvider'])
        session.run(None, {'image': image})
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own pybind types
        raise ModelImportError(f'onnxruntime cannot run the package graph: '
                               f'{first_line(error)}') from None
