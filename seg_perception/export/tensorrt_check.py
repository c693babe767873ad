"""Static TensorRT compatibility check of an ONNX graph (no TensorRT needed).

Reports every node, graph input or output that the ONNX parser of TensorRT 8.5 (JetPack 5)
or TensorRT 10.x (JetPack 6 ships 10.3) cannot take, so an export is known to be deployable
before it reaches a Jetson. The support data (onnx-tensorrt's operator support matrix, with
its sources) is in ``tensorrt_ops``; this module holds the checking logic.

Besides the matrix, two project rules are checked because the engines built from these graphs
are static and their outputs are bound by type: every graph input/output dimension must be a
known constant, and integer graph inputs/outputs must be INT32 (the seg_perception graph
contract; TensorRT 10 deployments reject or mis-handle INT64 outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

from .tensorrt_ops import (
    CONSTANT_INPUTS,
    OPSET_RANGE,
    RESIZE_COORDINATE_MODES,
    RESIZE_MODES,
    RESIZE_NEAREST_MODES,
    SUPPORT_TABLE,
    TOPK_MAX_K,
    TRT_VERSION_CHOICES,
)

# Operators whose output shape depends on the data: not allowed in a static-shape graph.
_DATA_DEPENDENT_SHAPE_OPS = ('NonZero', 'Loop', 'Unique', 'Compress', 'NonMaxSuppression')


class OnnxCheckError(ValueError):
    """The model cannot be read or the check was called with bad arguments."""


@dataclass(frozen=True)
class Issue:
    """One reason a graph would not parse (or not run statically) on TensorRT.

    Attributes:
        node: Node name (or ``op_type#index`` for unnamed nodes); the tensor name for graph
            input/output issues; ``<model>`` for model-level issues.
        op_type: ONNX operator, or ``graph input`` / ``graph output`` / ``opset``.
        trt_versions: TensorRT versions affected, a subset of ``TRT_VERSION_CHOICES``.
        reason: What is wrong and what would be accepted instead.
    """

    node: str
    op_type: str
    trt_versions: Tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        versions = '/'.join(self.trt_versions)
        return f'[TensorRT {versions}] {self.op_type} {self.node}: {self.reason}'


@dataclass(frozen=True)
class _OpSupport:
    types: Dict[str, Optional[Set[str]]]  # version -> supported type codes (None = unchecked)
    supported: Dict[str, bool]


def _parse_support_table() -> Dict[str, _OpSupport]:
    table: Dict[str, _OpSupport] = {}
    for line in SUPPORT_TABLE.strip().splitlines():
        op_type, *columns = line.split()
        types: Dict[str, Optional[Set[str]]] = {}
        supported: Dict[str, bool] = {}
        for version, column in zip(TRT_VERSION_CHOICES, columns):
            supported[version] = column != '-'
            types[version] = None if column in ('*', '-') else set(column.split(','))
        table[op_type] = _OpSupport(types, supported)
    return table


def normalize_trt_versions(versions: Union[str, Iterable[str]]) -> Tuple[str, ...]:
    """``'8.5,10'`` / ``['8.5', '10.3']`` -> ``('8.5', '10')``; unknown versions raise."""
    if isinstance(versions, str):
        versions = [v for v in versions.split(',') if v.strip()]
    result: List[str] = []
    for version in versions:
        text = str(version).strip().lower().rstrip('.x')
        key = '10' if text == '10' or text.startswith('10.') else text
        if key not in TRT_VERSION_CHOICES:
            raise OnnxCheckError(
                f'TensorRT version {version!r} is not known to the checker; valid: '
                f'{", ".join(TRT_VERSION_CHOICES)} (any 10.x counts as 10)')
        if key not in result:
            result.append(key)
    if not result:
        raise OnnxCheckError(f'no TensorRT version given; valid: {", ".join(TRT_VERSION_CHOICES)}')
    return tuple(result)


def _type_code(elem_type: int) -> str:
    from onnx import TensorProto
    return {
        TensorProto.FLOAT: 'F32', TensorProto.FLOAT16: 'F16', TensorProto.BFLOAT16: 'BF16',
        TensorProto.INT8: 'I8', TensorProto.INT32: 'I32', TensorProto.INT64: 'I64',
        TensorProto.UINT8: 'U8', TensorProto.BOOL: 'BOOL', TensorProto.DOUBLE: 'F64',
        TensorProto.STRING: 'STRING',
    }.get(elem_type, f'type{elem_type}')


def _parser_type(code: str, version: str) -> str:
    """The type the parser actually works in (8.5 casts INT64 -> INT32 and DOUBLE -> FLOAT)."""
    if version == '8.5':
        return {'I64': 'I32', 'F64': 'F32'}.get(code, code)
    return {'F64': 'F32'}.get(code, code)


def _load(model) -> 'onnx.ModelProto':  # noqa: F821
    import onnx
    if isinstance(model, onnx.ModelProto):
        return model
    path = str(model)
    try:
        return onnx.load(path)
    except FileNotFoundError:
        raise OnnxCheckError(f'ONNX file {path} does not exist') from None
    except Exception as error:  # protobuf raises its own DecodeError types
        raise OnnxCheckError(f'{path} is not a readable ONNX model: {error}') from None


def _iter_nodes(graph, prefix: str = '') -> Iterator[Tuple[str, object]]:
    """Every node of ``graph`` and of its subgraphs (If/Loop/Scan bodies), with a name."""
    for index, node in enumerate(graph.node):
        name = prefix + (node.name or f'{node.op_type}#{index}')
        yield name, node
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                yield from _iter_nodes(attribute.g, prefix=name + '/')
            for subgraph in attribute.graphs:
                yield from _iter_nodes(subgraph, prefix=name + '/')


def _attribute(node, name: str, default=None):
    from onnx import helper
    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode('utf-8') if isinstance(value, bytes) else value
    return default


class _Context:
    """Graph facts the per-node rules need: constants and tensor element types."""

    def __init__(self, model) -> None:
        graph = model.graph
        self._initializers = {init.name: init for init in graph.initializer}
        self._constant_nodes: Dict[str, object] = {}
        for _, node in _iter_nodes(graph):
            if node.op_type == 'Constant' and node.output:
                self._constant_nodes[node.output[0]] = node
        self.types: Dict[str, int] = {}
        for value_info in list(graph.input) + list(graph.output) + list(graph.value_info):
            if value_info.type.HasField('tensor_type'):
                self.types[value_info.name] = value_info.type.tensor_type.elem_type
        for init in graph.initializer:
            self.types[init.name] = init.data_type
        for name, node in self._constant_nodes.items():
            tensor = _attribute(node, 'value')
            if hasattr(tensor, 'data_type'):
                self.types.setdefault(name, tensor.data_type)
        for _, node in _iter_nodes(graph):
            if node.op_type == 'Identity' and node.input[0] in self.types:
                self.types.setdefault(node.output[0], self.types[node.input[0]])
        for name, elem_type in _infer_types(model).items():
            self.types.setdefault(name, elem_type)

    def is_constant(self, name: str) -> bool:
        return name in self._initializers or name in self._constant_nodes

    def constant_value(self, name: str):
        """numpy value of a constant tensor (None for non-tensor Constant attributes)."""
        from onnx import numpy_helper
        if name in self._initializers:
            return numpy_helper.to_array(self._initializers[name])
        tensor = _attribute(self._constant_nodes[name], 'value')
        return numpy_helper.to_array(tensor) if hasattr(tensor, 'dims') else None


def weightless_copy(model):
    """A copy of ``model`` whose large initializers keep name, type and dims but no data.

    Shape inference needs only the shapes of weights; copying 100 MB of them into the C++
    inference (as ``infer_shapes`` does) would dominate the check.
    """
    from onnx import ModelProto, TensorProto
    copy = ModelProto()
    graph = model.graph
    copy.CopyFrom(ModelProto(ir_version=model.ir_version, opset_import=model.opset_import))
    copy.graph.name = graph.name
    for field in ('node', 'input', 'output', 'value_info'):
        getattr(copy.graph, field).extend(getattr(graph, field))
    for init in graph.initializer:
        elements = 1
        for dim in init.dims:
            elements *= dim
        if elements <= 64:  # small ones may be shapes / axes that inference reads
            copy.graph.initializer.append(init)
        else:
            copy.graph.initializer.append(
                TensorProto(name=init.name, data_type=init.data_type, dims=init.dims))
    return copy


def _infer_types(model) -> Dict[str, int]:
    """Element type of every tensor shape inference can type (empty dict when it fails)."""
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(weightless_copy(model))
    except Exception:  # noqa: BLE001 - inference is a best effort for type checks only
        return {}
    return {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info
            if v.type.HasField('tensor_type')}


_Findings = Iterator[Tuple[Tuple[str, ...], str]]


def _pool_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    if node.op_type == 'MaxPool':
        if len(node.output) > 1 and node.output[1]:
            yield versions, ('the Indices output is used; onnx-tensorrt supports MaxPool without '
                             'indices only (replace MaxPool+MaxUnpool by an upsampling such as '
                             'Resize or ConvTranspose)')
        dilations = _attribute(node, 'dilations')
        if dilations and any(d != 1 for d in dilations):
            yield tuple(v for v in versions if v == '10'), \
                f'dilations {list(dilations)} must be empty or all ones'
    kernel = _attribute(node, 'kernel_shape') or []
    if len(kernel) not in (2, 3):
        yield versions, f'{len(kernel)}D pooling; only 2D or 3D pooling is supported'


def _conv_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    kernel = _attribute(node, 'kernel_shape') or []
    if kernel and len(kernel) not in (2, 3) and '8.5' in versions:
        yield ('8.5',), f'{len(kernel)}D convolution; TensorRT 8.5 supports 2D or 3D only'


def _resize_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    mode = _attribute(node, 'mode', 'nearest')
    if mode not in RESIZE_MODES:
        yield versions, (f'mode {mode!r} is not supported; Resize supports '
                         f'{" / ".join(RESIZE_MODES)} only')
    if node.op_type != 'Resize':
        return
    coordinate_mode = _attribute(node, 'coordinate_transformation_mode', 'half_pixel')
    if coordinate_mode not in RESIZE_COORDINATE_MODES:
        yield versions, (f'coordinate_transformation_mode {coordinate_mode!r} is not supported; '
                         f'valid: {", ".join(RESIZE_COORDINATE_MODES)}')
    nearest_mode = _attribute(node, 'nearest_mode', 'round_prefer_floor')
    if mode == 'nearest' and nearest_mode not in RESIZE_NEAREST_MODES:
        yield versions, (f'nearest_mode {nearest_mode!r} is not supported; '
                         f'valid: {", ".join(RESIZE_NEAREST_MODES)}')
    if _attribute(node, 'antialias', 0):
        yield versions, 'antialias=1 is not supported'
    policy = _attribute(node, 'keep_aspect_ratio_policy', 'stretch')
    if policy != 'stretch':
        yield versions, f'keep_aspect_ratio_policy {policy!r} is not supported (only stretch)'


def _topk_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    if len(node.input) > 1:
        k_value = context.constant_value(node.input[1]) \
            if context.is_constant(node.input[1]) else 'missing'
        if isinstance(k_value, str):
            yield versions, (f'K ({node.input[1]!r}) is not a constant; TensorRT needs K as an '
                             f'initializer, constant and below {TOPK_MAX_K}')
        elif k_value is not None and int(k_value.reshape(-1)[0]) >= TOPK_MAX_K:
            yield versions, (f'K = {int(k_value.reshape(-1)[0])} is too large; TensorRT TopK '
                             f'needs K < {TOPK_MAX_K}')
    if _attribute(node, 'sorted', 1) != 1:
        yield tuple(v for v in versions if v == '10'), 'sorted=0 is not supported'


def _scatter_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    reduction = _attribute(node, 'reduction', 'none')
    if reduction != 'none':
        yield versions, f"reduction {reduction!r} is not supported; only reduction='none'"


def _dropout_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    if len(node.input) > 2 and node.input[2]:
        training = context.constant_value(node.input[2]) \
            if context.is_constant(node.input[2]) else 'missing'
        if isinstance(training, str) or (training is not None and bool(training.any())):
            yield versions, 'training_mode must be a constant False (export in eval mode)'


def _data_dependent_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    yield versions, ('output shape depends on the data; seg_perception graphs and engines are '
                     'static-shape (use fixed-size masks / top-k instead)')


_OP_RULES = {
    'MaxPool': _pool_rules, 'AveragePool': _pool_rules, 'LpPool': _pool_rules,
    'Conv': _conv_rules, 'ConvTranspose': _conv_rules,
    'Resize': _resize_rules, 'Upsample': _resize_rules,
    'TopK': _topk_rules,
    'ScatterND': _scatter_rules, 'ScatterElements': _scatter_rules,
    'Dropout': _dropout_rules,
}


def _node_rules(node, context: '_Context', versions: Tuple[str, ...]) -> _Findings:
    """(versions affected, reason) for each restriction of the matrix ``node`` breaks."""
    op = node.op_type
    rule = _OP_RULES.get(op)
    if rule is not None:
        yield from rule(node, context, versions)
    if op in _DATA_DEPENDENT_SHAPE_OPS:
        yield from _data_dependent_rules(node, context, versions)
    for constant_op, index, label in CONSTANT_INPUTS:
        if op == constant_op and op != 'TopK' and len(node.input) > index \
                and node.input[index] and not context.is_constant(node.input[index]):
            yield versions, (f'input {label!r} ({node.input[index]!r}) must be a build-time '
                             'constant (initializer)')


def _check_types(node, support: _OpSupport, context: _Context,
                 versions: Sequence[str]) -> Iterator[Tuple[Tuple[str, ...], str]]:
    if not node.input or node.input[0] not in context.types:
        return
    code = _type_code(context.types[node.input[0]])
    for version in versions:
        allowed = support.types.get(version)
        if allowed is None or not support.supported[version]:
            continue
        if _parser_type(code, version) not in allowed:
            yield (version,), (f'input type {code} is not supported on TensorRT {version} '
                               f'(supported: {", ".join(sorted(allowed))})')


def _check_io(model, versions: Sequence[str]) -> Iterator[Issue]:
    from onnx import TensorProto
    initializers = {init.name for init in model.graph.initializer}
    for kind, values in (('graph input', model.graph.input), ('graph output', model.graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            if not value.type.HasField('tensor_type'):
                yield Issue(value.name, kind, tuple(versions),
                            'not a tensor (sequence/map/optional values are not supported)')
                continue
            tensor_type = value.type.tensor_type
            code = _type_code(tensor_type.elem_type)
            if tensor_type.elem_type == TensorProto.INT64:
                yield Issue(value.name, kind, tuple(versions),
                            'INT64: TensorRT 8.5 has no INT64 bindings and TensorRT 10 '
                            'deployments reject INT64 outputs; the graph contract requires INT32')
            elif code in ('F64', 'STRING') or code.startswith('type'):
                yield Issue(value.name, kind, tuple(versions),
                            f'data type {code} cannot be a TensorRT network input/output')
            elif code in ('BOOL', 'U8') and '8.5' in versions:
                yield Issue(value.name, kind, ('8.5',),
                            f'{code} network inputs/outputs are not supported by TensorRT 8.5 '
                            '(use INT32 or FLOAT)')
            if not tensor_type.HasField('shape'):
                yield Issue(value.name, kind, tuple(versions),
                            'has no shape; seg_perception engines need static shapes')
                continue
            dims = [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
                    for d in tensor_type.shape.dim]
            dynamic = [d for d in dims if not isinstance(d, int) or d <= 0]
            if dynamic:
                yield Issue(value.name, kind, tuple(versions),
                            f'shape {dims} has dynamic/unknown dimensions; export with static '
                            'shapes (seg_perception builds engines without optimisation profiles)')


def check_tensorrt_compatibility(model, trt_versions: Union[str, Sequence[str]] = ('8.5', '10')
                                 ) -> List[Issue]:
    """Every reason the TensorRT ONNX parser(s) would reject ``model``.

    Args:
        model: Path to an ``.onnx`` file or an ``onnx.ModelProto``.
        trt_versions: ``'8.5'`` and/or ``'10'`` (``'10.3'`` etc. count as ``'10'``), as a
            sequence or a comma-separated string.

    Returns:
        Issues in graph order: model-level (opset), graph inputs/outputs, then nodes; empty when
        the graph should parse on every requested version.

    Raises:
        OnnxCheckError: unreadable file or unknown TensorRT version.
    """
    versions = normalize_trt_versions(trt_versions)
    model = _load(model)
    issues: List[Issue] = []

    opsets = {entry.domain or 'ai.onnx': entry.version for entry in model.opset_import}
    opset = opsets.get('ai.onnx')
    for version in versions:
        low, high = OPSET_RANGE[version]
        if opset is None:
            issues.append(Issue('<model>', 'opset', (version,), 'model imports no ONNX opset'))
        elif not low <= opset <= high:
            issues.append(Issue('<model>', 'opset', (version,),
                                f'opset {opset} is outside {low}..{high} supported by TensorRT '
                                f'{version}; export with opset 17'))

    issues.extend(_check_io(model, versions))

    table = _parse_support_table()
    context = _Context(model)
    for name, node in _iter_nodes(model.graph):
        op = node.op_type
        if node.domain not in ('', 'ai.onnx'):
            issues.append(Issue(name, op, versions,
                                f'custom-domain operator {node.domain}::{op} needs a TensorRT '
                                'plugin'))
            continue
        support = table.get(op)
        if support is None:
            issues.append(Issue(name, op, versions,
                                'not in the onnx-tensorrt operator support matrix'))
            continue
        unsupported = tuple(v for v in versions if not support.supported[v])
        if unsupported:
            issues.append(Issue(name, op, unsupported,
                                'operator is not supported by onnx-tensorrt (matrix: N)'))
        findings: Dict[str, List[str]] = {}
        for affected, reason in list(_node_rules(node, context, versions)) + \
                list(_check_types(node, support, context, versions)):
            for version in affected:
                if version not in unsupported:
                    findings.setdefault(reason, []).append(version)
        for reason, affected in findings.items():
            issues.append(Issue(name, op, tuple(v for v in versions if v in affected), reason))
    return issues


def format_report(issues: Sequence[Issue], source: str, trt_versions: Sequence[str]) -> str:
    """Human-readable report, one line per issue (what ``seg-perception check-onnx`` prints)."""
    versions = ', '.join(normalize_trt_versions(trt_versions))
    if not issues:
        return f'{source}: OK for TensorRT {versions} (no unsupported nodes, inputs or outputs)'
    lines = [f'{source}: {len(issues)} issue(s) for TensorRT {versions}:']
    lines.extend(f'  {issue}' for issue in issues)
    return '\n'.join(lines)
