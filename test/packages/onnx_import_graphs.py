"""Segmentation graphs made by other code, for ``test_import_onnx``: small torch networks
exported by torch's TorchScript and dynamo exporters, and the reference prediction (the
source graph run directly by ONNX Runtime with hand-written preprocessing, torch bilinear
upsampling and argmax)."""

import os
from typing import Dict, Optional, Sequence, Tuple
import warnings

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class TinySegNet(nn.Module):
    """A random segmentation network with the output conventions of real ones.

    Args:
        classes: Class count C.
        stride: Output stride of the logits (1, 2, 4, 8, 16).
        nhwc_in: Takes (B, H, W, 3) instead of (B, 3, H, W).
        nhwc_out: Returns logits (B, h, w, C).
        upsample: Upsamples the logits to the input size inside the graph (torchvision's
            ``F.interpolate(size=x.shape[-2:])``).
        head: ``logits``, ``softmax`` (probabilities over C), ``argmax`` (int64 (B, H, W)) or
            ``argmax_keepdim`` (int64 (B, 1, H, W)).
        aux: Also returns a second logits map (torchvision's ``aux`` head).
        calibration: Typical inputs (the layout the network takes); its batch-norm
            statistics are measured on them, so that the class maps vary across the image
            whatever the input scale (raw 0..255, 0..1 or normalised).
    """

    def __init__(self, classes: int, stride: int = 4, nhwc_in: bool = False,
                 nhwc_out: bool = False, upsample: bool = False, head: str = 'logits',
                 aux: bool = False, calibration: Optional[torch.Tensor] = None,
                 seed: int = 0) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        layers, channels = [], 3
        for _ in range(int(np.log2(stride))):
            layers += [nn.Conv2d(channels, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12),
                       nn.ReLU()]
            channels = 12
        layers += [nn.Conv2d(channels, 12, 3, padding=1), nn.BatchNorm2d(12)]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(12, classes, 1)
        self.aux_classifier = nn.Conv2d(12, classes, 1) if aux else None
        torch.random.set_rng_state(generator_state)
        self.nhwc_in, self.nhwc_out, self.upsample, self.head = nhwc_in, nhwc_out, upsample, head
        if calibration is not None:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.momentum = None  # a plain average over the calibration batch
            self.train()
            with torch.no_grad():
                self.forward(calibration)
        self.eval()

    def forward(self, x):
        if self.nhwc_in:
            x = x.permute(0, 3, 1, 2)
        features = self.body(x)
        y = self.classifier(features)
        if self.upsample:
            y = F.interpolate(y, size=x.shape[-2:], mode='bilinear', align_corners=False)
        if self.head == 'softmax':
            y = y.softmax(dim=1)
        elif self.head == 'argmax':
            return y.argmax(dim=1)
        elif self.head == 'argmax_keepdim':
            return y.argmax(dim=1, keepdim=True)
        if self.nhwc_out:
            y = y.permute(0, 2, 3, 1)
        if self.aux_classifier is not None:
            return y, self.aux_classifier(features)
        return y


def export_torchscript(network: nn.Module, path: str, example: torch.Tensor, opset: int,
                       output_names: Sequence[str] = ('out',),
                       dynamic_axes: Optional[Dict[str, Dict[int, str]]] = None) -> str:
    """torch.onnx.export with the TorchScript exporter (``dynamo=False``)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(network.eval(), (example,), path, dynamo=False, opset_version=opset,
                          input_names=['input'], output_names=list(output_names),
                          dynamic_axes=dynamic_axes)
    return path


def export_dynamo(network: nn.Module, path: str, example: torch.Tensor,
                  dynamic_axes: Sequence[int] = ()) -> str:
    """torch.onnx.export with the dynamo exporter (needs onnxscript)."""
    dims = {axis: torch.export.Dim(f'd{axis}', min=2 if axis else 1, max=4096)
            for axis in dynamic_axes}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        program = torch.onnx.export(network.eval(), (example,), dynamo=True, verbose=False,
                                    input_names=['input'], output_names=['out'],
                                    dynamic_shapes=(dims,) if dims else None)
    program.save(path)
    return path


def manual_input(image: np.ndarray, layout: str = 'nchw', channel_order: str = 'rgb',
                 input_range: str = '0-255', mean=None, std=None,
                 dtype=np.float32) -> np.ndarray:
    """The camera's RGB uint8 (H, W, 3) image as the source graph wants it, by hand."""
    x = image.astype(np.float32)
    if input_range == '0-1':
        x = x / np.float32(255.0)
    if mean is not None:
        x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    if channel_order == 'bgr':
        x = x[..., ::-1]
    if layout == 'nchw':
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None]).astype(dtype)


def reference_prediction(path: str, image_input: np.ndarray, size: Tuple[int, int],
                         output: Optional[str] = None, nhwc_out: bool = False,
                         probabilities: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(B, H, W) class ids and confidence: the source graph run by ONNX Runtime, its scores
    upsampled with torch's bilinear interpolation (align_corners False) to ``size`` (height,
    width), argmax; the confidence is the softmax (or, for ``probabilities``, the plain)
    maximum over classes, 1 for class-id outputs."""
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    value = session.run([output] if output else None, {name: image_input})[0]
    if np.issubdtype(value.dtype, np.integer):
        ids = value.reshape((len(value),) + tuple(size)).astype(np.int64)
        return ids, np.ones(ids.shape, np.float32)
    scores = torch.from_numpy(value.astype(np.float32))
    if nhwc_out:
        scores = scores.permute(0, 3, 1, 2)
    if tuple(scores.shape[-2:]) != tuple(size):
        scores = F.interpolate(scores, size=size, mode='bilinear', align_corners=False)
    chosen = scores if probabilities else scores.softmax(dim=1)
    return scores.argmax(dim=1).numpy(), chosen.max(dim=1).values.numpy()


def leftovers(out_dir: str) -> Sequence[str]:
    """What a failed import left: ``out_dir`` itself or scratch directories beside it."""
    parent, base = os.path.split(os.path.abspath(out_dir))
    return sorted(n for n in os.listdir(parent) if n == base or n.startswith('.' + base + '.'))


def cast_graph(path: str, input_type: int, output_type: int, classes: int,
               nhwc: bool = False, size: Tuple[int, int] = (48, 32)) -> str:
    """An ``onnx.helper`` graph whose input and logits have other element types (uint8
    pixels, float16...): [Transpose] -> Cast float -> Conv stride 2 -> Cast, opset 15."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    width, height = size
    rng = np.random.default_rng(3)
    weights = numpy_helper.from_array(
        rng.standard_normal((classes, 3, 3, 3)).astype(np.float32) * 0.05, 'weights')
    nodes, current = [], 'pixels'
    if nhwc:
        nodes.append(helper.make_node('Transpose', [current], ['nchw'], perm=[0, 3, 1, 2]))
        current = 'nchw'
    nodes += [helper.make_node('Cast', [current], ['float'], to=TensorProto.FLOAT),
              helper.make_node('Conv', ['float', 'weights'], ['conv'], pads=[1, 1, 1, 1],
                               strides=[2, 2]),
              helper.make_node('Cast', ['conv'], ['out'], to=output_type)]
    shape = [1, height, width, 3] if nhwc else [1, 3, height, width]
    graph = helper.make_graph(nodes, 'cast_graph',
                              [helper.make_tensor_value_info('pixels', input_type, shape)],
                              [helper.make_tensor_value_info('out', output_type, None)],
                              initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 15)])
    model.ir_version = 8
    onnx.save(model, path)
    return path
