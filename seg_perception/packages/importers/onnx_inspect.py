"""Reading a user's segmentation ONNX graph: its input, its outputs and what they mean.

``seg-perception import onnx`` first asks this module what it can tell from the graph alone:

* the image input (exactly one non-initializer input of rank 4): layout (NCHW when only axis
  1 has 3 entries, NHWC when only axis 3 has), height / width (static, or ``--input-size``),
  batch (static, or the package default) and element type (float32/16/64 or uint8);
* given the static shape of every output at that size (``onnx_graph.output_signatures``),
  which one is the segmentation output: logits or probabilities (B, C, h, w) / (B, h, w, C)
  at any stride, or a class-id map (B, H, W) / (B, 1, H, W) / (B, H, W, 1) of any integer
  type.

Where the graph does not decide, ``ModelImportError`` says in one line which flag to set.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Dict, List, Optional, Sequence, Tuple

from . import ModelImportError

#: Element types of images the input adapter can produce (TensorProto enum -> name).
IMAGE_TYPES = {1: 'float32', 10: 'float16', 11: 'float64', 2: 'uint8'}
FLOAT_TYPES = {1: 'float32', 10: 'float16', 11: 'float64'}
INTEGER_TYPES = {2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64',
                 12: 'uint32', 13: 'uint64'}
LAYOUT_CHOICES = ('nchw', 'nhwc')
#: Protobuf's limit on one serialised message: the package's model.onnx holds all weights.
MAX_MODEL_BYTES = 2**31 - 2**20

Dims = Tuple[Optional[int], ...]


def type_name(elem_type: int) -> str:
    from onnx import TensorProto
    return {**IMAGE_TYPES, **INTEGER_TYPES}.get(elem_type) or \
        TensorProto.DataType.Name(elem_type).lower()


def format_dims(dims: Sequence[object]) -> str:
    return '[' + ', '.join('?' if d is None else str(d) for d in dims) + ']'


def value_dims(value) -> Dims:
    """Dimensions of a ValueInfoProto; None for symbolic or unknown ones."""
    shape = value.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField('dim_value') and d.dim_value > 0 else None
                 for d in shape.dim)


@dataclass
class InputFacts:
    """The image input: name, element type, layout and the static size it is fixed to.

    Attributes:
        dims: The source graph's dimensions (None = dynamic).
        layout: ``nchw`` or ``nhwc``; ``layout_from`` says how it was decided.
        height, width, batch: The static size of the package; ``size_from`` and
            ``batch_from`` say where they came from.
    """

    name: str
    elem_type: int
    dims: Dims
    layout: str
    layout_from: str
    height: int
    width: int
    size_from: str
    batch: int
    batch_from: str

    @property
    def static_shape(self) -> Tuple[int, int, int, int]:
        if self.layout == 'nchw':
            return self.batch, 3, self.height, self.width
        return self.batch, self.height, self.width, 3

    def describe(self) -> str:
        return (f'input {self.name!r}: {type_name(self.elem_type)} {format_dims(self.dims)} -> '
                f'layout {self.layout} ({self.layout_from}), size {self.width}x{self.height} '
                f'({self.size_from}), batch {self.batch} ({self.batch_from})')


@dataclass
class OutputFacts:
    """The segmentation output and how the package reads it.

    Attributes:
        kind: ``logits``, ``probabilities`` (a Softmax over the class axis ends the graph:
            confidence is then the probability itself) or ``class_ids``.
        layout: ``nchw`` / ``nhwc`` for logits and probabilities, ``''`` for class ids.
        shape: Static shape of the output at the package's input size.
        channels: Class count C (1 for class-id maps).
        height, width: The output's spatial size (h, w); logits are upsampled bilinearly
            from it to the network input size.
    """

    name: str
    elem_type: int
    shape: Tuple[int, ...]
    kind: str
    layout: str
    channels: int
    height: int
    width: int

    def stride(self, facts: InputFacts) -> Tuple[float, float]:
        return facts.height / self.height, facts.width / self.width

    def describe(self, facts: InputFacts) -> str:
        text = (f'output {self.name!r}: {type_name(self.elem_type)} '
                f'{format_dims(self.shape)} -> ')
        if self.kind == 'class_ids':
            return text + 'class-id map (confidence 1), cast to int32'
        stride_y, stride_x = self.stride(facts)
        stride = f'{stride_y:g}' if stride_y == stride_x else f'{stride_y:g}x{stride_x:g}'
        resize = 'no resize' if stride == '1' else \
            f'bilinear upsampling to {facts.width}x{facts.height}'
        return text + f'{self.kind}, {self.layout}, {self.channels} classes, stride {stride} ' \
                      f'({resize})'


def load_source(path: str) -> Tuple[object, Dict[str, int]]:
    """Read an ONNX file with its external data; ``ModelImportError`` when it cannot be read.

    External data files are checked for presence and size before their bytes are read, so a
    missing or truncated ``.data`` file is named instead of failing deep inside onnx.

    Returns:
        ``(model, external)``: the model with all weights in memory, and the bytes each
        external data file (name beside the .onnx file) holds for it.
    """
    import onnx
    from onnx import external_data_helper
    if not os.path.isfile(path):
        raise ModelImportError(f'{path} does not exist or is not a file')
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf raises its own DecodeError types
        raise ModelImportError(f'{path} is not a readable ONNX model (truncated or corrupt?): '
                               f'{type(error).__name__}: {error}') from None
    if not model.graph.node or not model.graph.output:
        raise ModelImportError(f'{path} holds no graph (empty, truncated or not an ONNX model)')
    base = os.path.dirname(os.path.abspath(path))
    needed: Dict[str, int] = {}
    for tensor in model.graph.initializer:
        if external_data_helper.uses_external_data(tensor):
            info = external_data_helper.ExternalDataInfo(tensor)
            end = (info.offset or 0) + (info.length or 0)
            needed[info.location] = max(needed.get(info.location, 0), end)
    for location, end in needed.items():
        data_path = os.path.join(base, location)
        if not os.path.isfile(data_path):
            raise ModelImportError(f'{path}: external data file {location} is missing (it must '
                                   'lie beside the .onnx file)')
        if os.path.getsize(data_path) < end:
            raise ModelImportError(f'{path}: external data file {location} is truncated '
                                   f'({os.path.getsize(data_path)} bytes, needs {end})')
    total = os.path.getsize(path) + sum(needed.values())
    if total >= MAX_MODEL_BYTES:
        raise ModelImportError(f'{path}: {total / 2**30:.1f} GB of graph and weights; a model '
                               'package keeps them in one model.onnx, which protobuf limits '
                               'to 2 GB')
    if needed:
        external_data_helper.load_external_data_for_model(model, base)
    return model, needed


def opset_of(model) -> int:
    for entry in model.opset_import:
        if entry.domain in ('', 'ai.onnx'):
            return int(entry.version)
    raise ModelImportError('the graph imports no ONNX opset (not a valid ONNX model)')


def image_input(model):
    """The one graph input that is not an initializer."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ', '.join(repr(v.name) for v in inputs) or 'none'
        raise ModelImportError(f'the graph has {len(inputs)} inputs ({names}); only graphs with '
                               'one image input can be imported')
    return inputs[0]


def inspect_input(model, input_size: Optional[Tuple[int, int]], layout: Optional[str],
                  default_batch: int) -> InputFacts:
    """Layout, static size and batch of the image input, from the graph and the flags.

    Args:
        input_size: ``--input-size`` as (width, height), or None.
        layout: ``--layout`` (``nchw`` / ``nhwc``), or None to infer it.
        default_batch: Batch of the package when the graph's batch axis is dynamic.
    """
    value = image_input(model)
    name = value.name
    elem_type = value.type.tensor_type.elem_type
    dims = value_dims(value)
    if elem_type not in IMAGE_TYPES:
        raise ModelImportError(f'input {name!r} is {type_name(elem_type)}; the importer feeds '
                               'images as float32, float16, float64 or uint8')
    if len(dims) != 4:
        raise ModelImportError(
            f'input {name!r} has shape {format_dims(dims)}; an image input has 4 dimensions '
            '(batch, 3, height, width) or (batch, height, width, 3)')
    if layout is None:
        first, last = dims[1] == 3, dims[3] == 3
        if first == last:
            raise ModelImportError(
                f'cannot tell the layout of input {name!r} {format_dims(dims)}: set --layout '
                'nchw or --layout nhwc')
        layout, layout_from = ('nchw' if first else 'nhwc'), f'axis {1 if first else 3} is 3'
    else:
        layout_from = '--layout'
    channel_axis, spatial = (1, (2, 3)) if layout == 'nchw' else (3, (1, 2))
    if dims[channel_axis] not in (None, 3):
        raise ModelImportError(
            f'input {name!r} {format_dims(dims)} has {dims[channel_axis]} channels on axis '
            f'{channel_axis} (layout {layout}); the importer feeds 3-channel images: '
            'check --layout')
    height, width = dims[spatial[0]], dims[spatial[1]]
    if input_size is not None:
        want_width, want_height = input_size
        if (height or want_height) != want_height or (width or want_width) != want_width:
            raise ModelImportError(
                f'input {name!r} is fixed at {width or "?"}x{height or "?"}; --input-size '
                f'{want_width}x{want_height} cannot change it (drop --input-size)')
        size_from = '--input-size' if None in (height, width) else 'static, = --input-size'
        height, width = want_height, want_width
    elif height is None or width is None:
        raise ModelImportError(
            f'input {name!r} {format_dims(dims)} has dynamic height/width: set --input-size '
            'WIDTHxHEIGHT (the size the package runs at)')
    else:
        size_from = 'static'
    batch, batch_from = (dims[0], 'static') if dims[0] else (default_batch, 'dynamic: package '
                                                             'default')
    return InputFacts(name=name, elem_type=elem_type, dims=dims, layout=layout,
                      layout_from=layout_from, height=height, width=width, size_from=size_from,
                      batch=batch, batch_from=batch_from)


def _plausible_spatial(height: int, width: int, facts: InputFacts) -> bool:
    """(height, width) can be a feature map of the input: not larger, similar stride."""
    if not (0 < height <= facts.height and 0 < width <= facts.width):
        return False
    stride_y, stride_x = facts.height / height, facts.width / width
    return max(stride_y, stride_x) <= 2.0 * min(stride_y, stride_x)


def _float_layout(shape: Tuple[int, ...], num_classes: int, facts: InputFacts) -> Optional[str]:
    """``nchw`` / ``nhwc`` for a rank-4 float output, or None when it is neither."""
    options = [layout for layout, (channels, height, width) in
               (('nchw', shape[1:]), ('nhwc', (shape[3], shape[1], shape[2])))
               if _plausible_spatial(height, width, facts) and channels > 1]
    matching = [layout for layout in options
                if shape[1 if layout == 'nchw' else 3] == num_classes]
    for candidates in (matching, options):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) == 2:
            return facts.layout  # a square map with C classes either way: as the input
    return None


def _is_softmax_output(model, name: str, channel_axis: int) -> bool:
    """True when ``name`` is a Softmax over ``channel_axis`` (directly, or moved there by a
    Transpose as torch's opset-11 export does)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers.get(name)
    axis = channel_axis
    if node is not None and node.op_type == 'Transpose':
        perm = [list(a.ints) for a in node.attribute if a.name == 'perm']
        if not perm:
            return False
        axis = perm[0][channel_axis]
        node = producers.get(node.input[0])
    if node is None or node.op_type != 'Softmax':
        return False
    default = -1 if opset_of(model) >= 13 else 1
    softmax_axis = next((a.i for a in node.attribute if a.name == 'axis'), default) % 4
    return softmax_axis == axis and (opset_of(model) >= 13 or axis == 3)


def classify_output(model, name: str, elem_type: int, shape: Tuple[int, ...],
                    facts: InputFacts, num_classes: int, labels_name: str) -> OutputFacts:
    """What the output ``name`` of static ``shape`` is, or ``ModelImportError`` saying why it
    cannot be the segmentation output (class count: naming ``--labels``)."""
    where = f'output {name!r} {type_name(elem_type)} {format_dims(shape)}'
    if shape[:1] != (facts.batch,):
        raise ModelImportError(f'{where} does not start with the batch axis ({facts.batch})')
    if elem_type in INTEGER_TYPES:
        if len(shape) == 4 and 1 in (shape[1], shape[3]):
            spatial = shape[2:] if shape[1] == 1 else shape[1:3]
        elif len(shape) == 3:
            spatial = shape[1:]
        else:
            raise ModelImportError(f'{where} is neither (B, H, W) nor (B, 1, H, W) class ids')
        if tuple(spatial) != (facts.height, facts.width):
            raise ModelImportError(
                f'{where} has class ids at {spatial[1]}x{spatial[0]}, the input is '
                f'{facts.width}x{facts.height}; only logits can be upsampled')
        return OutputFacts(name, elem_type, shape, 'class_ids', '', 1, *spatial)
    if elem_type not in FLOAT_TYPES or len(shape) != 4:
        raise ModelImportError(f'{where} is neither logits (B, C, h, w) / (B, h, w, C) nor an '
                               'integer class-id map')
    layout = _float_layout(shape, num_classes, facts)
    if layout is None:
        raise ModelImportError(f'{where}: no axis holds classes over a map of the input '
                               f'{facts.width}x{facts.height}; not segmentation logits')
    channels, height, width = shape[1:] if layout == 'nchw' else (shape[3], *shape[1:3])
    if channels != num_classes:
        raise ModelImportError(
            f'{where} has {channels} classes but --labels {labels_name} has {num_classes}: '
            'set --labels to the label set the model was trained with')
    kind = 'probabilities' if _is_softmax_output(model, name, 1 if layout == 'nchw' else 3) \
        else 'logits'
    return OutputFacts(name, elem_type, shape, kind, layout, channels, height, width)


def choose_output(model, signatures: Dict[str, Tuple[int, Tuple[int, ...]]],
                  facts: InputFacts, num_classes: int, labels_name: str,
                  wanted: Optional[str]) -> OutputFacts:
    """The segmentation output: ``wanted`` (``--output``), else the only graph output, else
    the only one that classifies as segmentation output with the label set's class count."""
    names = list(signatures)
    if wanted is not None:
        if wanted not in signatures:
            raise ModelImportError(f'--output {wanted!r} is not a graph output (outputs: '
                                   f'{", ".join(names)})')
        names = [wanted]
    if len(names) == 1:
        return classify_output(model, names[0], *signatures[names[0]], facts, num_classes,
                               labels_name)
    found: List[OutputFacts] = []
    for name in names:
        try:
            found.append(classify_output(model, name, *signatures[name], facts, num_classes,
                                         labels_name))
        except ModelImportError:
            continue
    if len(found) == 1:
        return found[0]
    listed = ', '.join(f'{n} {format_dims(signatures[n][1])}' for n in names)
    if found:
        raise ModelImportError(
            f'{len(found)} outputs could be the segmentation output ({listed}): set --output '
            'NAME')
    raise ModelImportError(
        f'no output is logits with {num_classes} classes (--labels {labels_name}) or a '
        f'class-id map ({listed}): set --output NAME and --labels')

