"""The two small graphs an imported package wraps around the user's graph.

* The input adapter turns the graph contract's input (``image`` float32 (B, 3, H, W), raw RGB
  0..255, see ``manifest``) into what the user's graph wants: divided by 255 for
  ``--input-range 0-1``, then ``(x - mean) / std`` with mean and std in RGB order on that
  range's scale, then the channels reordered (``--channel-order``), laid out (``--layout``)
  and cast to the input's element type. Only the steps that change something are nodes.
* The tail turns the segmentation output into the contract's ``semantic`` int32 (B, H, W)
  and ``confidence`` float32 (B, H, W). Logits and probabilities: NHWC -> NCHW, bilinear
  upsampling (align_corners false, as torchvision does) to the network input size, then the
  project's ``postprocess.fused.FusedPostprocess`` in semantic mode (argmax, softmax
  probability of the chosen class), exported by torch. Probabilities enter it as their
  logarithm, so its softmax gives back the probability itself. Class-id maps: a Cast to int32
  and a constant confidence of 1.
"""

from __future__ import annotations

from dataclasses import dataclass
import io
from typing import Optional, Tuple
import warnings

from ...labels import LabelSet
from ...manifest import SEMANTIC_OUTPUTS
from . import ModelImportError
from .onnx_inspect import InputFacts, OutputFacts, type_name

CHANNEL_ORDER_CHOICES = ('rgb', 'bgr')
INPUT_RANGE_CHOICES = ('0-255', '0-1')
#: Input of the package graph (the contract's image) and the adapter's output.
IMAGE_INPUT = 'image'
ADAPTER_OUTPUT = 'input_adapter/image'
#: Input of the tail: the user's segmentation output.
TAIL_INPUT = 'postprocess/segmentation'
#: Probabilities are clamped to this before their logarithm (log 0 would be -inf).
PROBABILITY_FLOOR = 1e-30

Triple = Tuple[float, float, float]


@dataclass(frozen=True)
class Preprocessing:
    """What the user's graph wants fed, stated as the importer's flags.

    Attributes:
        channel_order: ``rgb`` or ``bgr``: the channel order the network was trained on.
        input_range: ``0-255`` or ``0-1``: the scale of the pixels before normalisation.
        mean, std: Per-channel normalisation in RGB order on the ``input_range`` scale
            (torchvision: 0.485... / 0.229... with 0-1; mmsegmentation: 123.675... /
            58.395... with 0-255); None for no normalisation (both or neither).
    """

    channel_order: str = 'rgb'
    input_range: str = '0-255'
    mean: Optional[Triple] = None
    std: Optional[Triple] = None

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDER_CHOICES:
            raise ModelImportError(f'--channel-order {self.channel_order!r} is not one of '
                                   f'{", ".join(CHANNEL_ORDER_CHOICES)}')
        if self.input_range not in INPUT_RANGE_CHOICES:
            raise ModelImportError(f'--input-range {self.input_range!r} is not one of '
                                   f'{", ".join(INPUT_RANGE_CHOICES)}')
        if (self.mean is None) != (self.std is None):
            missing = '--std' if self.std is None else '--mean'
            raise ModelImportError(f'--mean and --std go together: add {missing} R G B')
        for flag, values in (('--mean', self.mean), ('--std', self.std)):
            if values is not None and len(values) != 3:
                raise ModelImportError(f'{flag} takes 3 values (R G B), got {len(values)}')
        if self.std is not None and any(float(s) == 0.0 for s in self.std):
            raise ModelImportError(f'--std {" ".join(map(str, self.std))} has a zero')

    def manifest_mean_std(self) -> Tuple[Triple, Triple]:
        """The same normalisation as the manifest states it: mean and std on 0..1 RGB."""
        factor = 1.0 / 255.0 if self.input_range == '0-255' else 1.0
        mean, std = self.mean or (0.0, 0.0, 0.0), self.std or (1.0, 1.0, 1.0)
        return (tuple(float(m) * factor for m in mean),  # type: ignore[return-value]
                tuple(float(s) * factor for s in std))

    def describe(self, facts: InputFacts) -> str:
        steps = ['RGB 0..255']
        if self.input_range == '0-1':
            steps.append('/ 255')
        if self.mean is not None:
            steps.append(f'(x - [{" ".join(f"{m:g}" for m in self.mean)}]) / '
                         f'[{" ".join(f"{s:g}" for s in self.std)}]')
        if self.channel_order == 'bgr':
            steps.append('BGR')
        if facts.layout == 'nhwc':
            steps.append('NHWC')
        if facts.elem_type != 1:
            steps.append(type_name(facts.elem_type))
        return ('preprocessing in the graph: ' + ' -> '.join(steps)
                + ' (order, range and normalisation: the flags or their defaults; a graph '
                'cannot tell)')


def input_adapter(pre: Preprocessing, facts: InputFacts, opset: int):
    """The adapter graph: ``image`` float32 (B, 3, H, W) raw RGB 0..255 -> ``ADAPTER_OUTPUT``
    of the user's input type and static shape (``facts.static_shape``)."""
    import numpy as np
    from onnx import helper, numpy_helper, TensorProto
    if facts.elem_type == TensorProto.UINT8 and (pre.mean is not None
                                                  or pre.input_range == '0-1'):
        raise ModelImportError(f'input {facts.name!r} is uint8 (raw pixels): drop --mean/--std '
                               'and --input-range 0-1')
    nodes, initializers = [], []
    current = IMAGE_INPUT

    def constant(name: str, values, dtype=np.float32, shape=(1, 3, 1, 1)) -> str:
        initializers.append(numpy_helper.from_array(
            np.asarray(values, dtype=dtype).reshape(shape), f'input_adapter/{name}'))
        return f'input_adapter/{name}'

    def step(op: str, *inputs: str, **attributes) -> None:
        nonlocal current
        name = f'input_adapter/{op}_{len(nodes)}'
        nodes.append(helper.make_node(op, [current, *inputs], [name], name=name, **attributes))
        current = name

    if pre.input_range == '0-1':
        step('Div', constant('range', 255.0, shape=()))
    if pre.mean is not None:
        step('Sub', constant('mean', pre.mean))
        step('Div', constant('std', pre.std))
    if pre.channel_order == 'bgr':
        step('Gather', constant('bgr', [2, 1, 0], np.int64, (3,)), axis=1)
    if facts.layout == 'nhwc':
        step('Transpose', perm=[0, 2, 3, 1])
    if facts.elem_type != TensorProto.FLOAT:
        step('Cast', to=facts.elem_type)
    if not nodes:
        step('Identity')
    nodes[-1].output[0] = ADAPTER_OUTPUT
    batch, height, width = facts.batch, facts.height, facts.width
    graph = helper.make_graph(
        nodes, 'input_adapter',
        [helper.make_tensor_value_info(IMAGE_INPUT, TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info(ADAPTER_OUTPUT, facts.elem_type, facts.static_shape)],
        initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])


def class_id_tail(output: OutputFacts, facts: InputFacts, opset: int):
    """Tail for class-id maps: int32 (B, H, W) ``semantic``, ``confidence`` 1 everywhere."""
    import numpy as np
    from onnx import helper, numpy_helper, TensorProto
    semantic, confidence = SEMANTIC_OUTPUTS
    shape = [facts.batch, facts.height, facts.width]
    cast = 'Cast' if output.elem_type != TensorProto.INT32 else 'Identity'
    nodes = [
        helper.make_node(cast, [TAIL_INPUT], ['postprocess/ids'], name='postprocess/Cast',
                         **({'to': TensorProto.INT32} if cast == 'Cast' else {})),
        helper.make_node('Reshape', ['postprocess/ids', 'postprocess/shape'], [semantic],
                         name='postprocess/Reshape'),
        helper.make_node('Expand', ['postprocess/one', 'postprocess/shape'], [confidence],
                         name='postprocess/Expand'),
    ]
    initializers = [numpy_helper.from_array(np.asarray(shape, np.int64), 'postprocess/shape'),
                    numpy_helper.from_array(np.ones((1,), np.float32), 'postprocess/one')]
    graph = helper.make_graph(
        nodes, 'postprocess',
        [helper.make_tensor_value_info(TAIL_INPUT, output.elem_type, list(output.shape))],
        [helper.make_tensor_value_info(semantic, TensorProto.INT32, shape),
         helper.make_tensor_value_info(confidence, TensorProto.FLOAT, shape)],
        initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])


def logits_tail(output: OutputFacts, facts: InputFacts, labels: LabelSet, opset: int):
    """Tail for logits / probabilities: layout, upsampling and ``FusedPostprocess`` (semantic
    mode), exported by torch's TorchScript exporter at ``opset``."""
    import onnx
    from onnx import helper
    import torch
    from torch import nn
    import torch.nn.functional as F

    from ...postprocess.fused import FusedPostprocess
    size = (facts.height, facts.width)

    class SemanticTail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.postprocess = FusedPostprocess(
                num_classes=labels.num_classes, thing_ids=labels.thing_ids,
                void_id=labels.void_id, panoptic=False, height=size[0], width=size[1])

        def forward(self, scores: torch.Tensor):
            scores = scores.float()
            if output.layout == 'nhwc':
                scores = scores.permute(0, 3, 1, 2)
            if (output.height, output.width) != size:
                scores = F.interpolate(scores, size=size, mode='bilinear', align_corners=False)
            if output.kind == 'probabilities':
                scores = torch.log(torch.clamp(scores, min=PROBABILITY_FLOOR))
            return self.postprocess(scores)

    dtype = helper.tensor_dtype_to_np_dtype(output.elem_type)
    example = torch.rand(output.shape, dtype=getattr(torch, dtype.name))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        try:
            torch.onnx.export(SemanticTail().eval(), (example,), buffer, dynamo=False,
                              opset_version=opset, input_names=[TAIL_INPUT],
                              output_names=list(SEMANTIC_OUTPUTS), do_constant_folding=True)
        except Exception as error:  # noqa: BLE001 - torch raises many unrelated types here
            raise ModelImportError(f'exporting the post-processing at opset {opset} failed: '
                                   f'{type(error).__name__}: {error}') from None
    return onnx.load_from_string(buffer.getvalue())
