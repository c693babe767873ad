"""Small building blocks shared by the architectures.

Every op here exports to ONNX opset 17 with static shapes and parses in TensorRT 8.5 / 10.x:
convolutions, batch norm, ReLU / PReLU / hardswish / hardsigmoid, average pooling and
``Resize`` (bilinear, ``align_corners=False``) with *constant* scales. Resizes take a scale
factor, never a size read from a tensor, so the exported graph has no Shape -> Resize chains.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple
import warnings

import torch
from torch import nn
import torch.nn.functional as F

ActivationFactory = Callable[[], nn.Module]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, not below 90 % of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def upsample(features: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear upsampling by an integer factor (ONNX ``Resize`` with constant scales).

    Args:
        features: float (N, C, h, w).
        factor: Integer scale; 1 returns ``features`` unchanged.

    Returns:
        float (N, C, h * factor, w * factor).
    """
    if factor == 1:
        return features
    return F.interpolate(features, scale_factor=float(factor), mode='bilinear',
                         align_corners=False)


def static_shape(features: torch.Tensor) -> Tuple[int, ...]:
    """Shape of ``features`` as Python ints.

    Under ``torch.onnx.export`` tracing this bakes the shape into the graph as constants,
    which is what we want: every graph made here has static shapes. The tracer's warning
    about exactly that is silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        return tuple(int(size) for size in features.shape)


def static_spatial_size(features: torch.Tensor) -> Tuple[int, int]:
    """(height, width) of float (N, C, H, W) ``features`` as Python ints (see
    ``static_shape``)."""
    shape = static_shape(features)
    return shape[-2], shape[-1]


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                dilation: int = 1, groups: int = 1,
                activation: Optional[ActivationFactory] = nn.ReLU) -> nn.Sequential:
    """Conv (same padding, no bias) + BatchNorm + optional activation."""
    padding = dilation * (kernel_size - 1) // 2
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                  dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise k x k conv + BN + act, then pointwise 1 x 1 conv + BN + act."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 dilation: int = 1, activation: ActivationFactory = nn.ReLU) -> None:
        super().__init__(
            conv_bn_act(in_channels, in_channels, kernel_size, dilation=dilation,
                        groups=in_channels, activation=activation),
            conv_bn_act(in_channels, out_channels, 1, activation=activation),
        )


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-and-excitation: global mean -> 1x1 -> ReLU -> 1x1 -> hardsigmoid.

    The channel weights (N, C, 1, 1) multiply the input by broadcasting, so no resize is
    needed and the ONNX graph is ReduceMean / Conv / HardSigmoid / Mul.
    """

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        weights = features.mean(dim=(2, 3), keepdim=True)
        weights = F.hardsigmoid(self.expand(F.relu(self.reduce(weights))))
        return features * weights


class DepthwisePReLU(nn.Module):
    """PReLU rewritten for export: ``(1 - a) * relu(x) + a * x`` as two 1x1 depthwise convs.

    The same function as ``nn.PReLU`` (up to float rounding), built from ops that ONNX
    Runtime's CPU layout optimiser keeps in its blocked (NCHWc) format and fuses (Conv, Relu,
    Add). Its ``PRelu`` kernel is neither: in ENet it was a quarter of the run time plus the
    layout reorders around each of its 67 activations. Used only in exported graphs
    (``export_activations``); training and the torch backend run ``nn.PReLU``.

    (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        slopes = prelu.weight.detach().reshape(-1)
        channels = slopes.numel()
        self.negative = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
        self.positive = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
        with torch.no_grad():
            self.negative.weight.copy_(slopes.view(channels, 1, 1, 1))
            self.positive.weight.copy_((1.0 - slopes).view(channels, 1, 1, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.positive(F.relu(features)) + self.negative(features)


class DepthToSpaceConvTranspose(nn.Module):
    """A 2x2 stride-2 ``nn.ConvTranspose2d`` rewritten for export: 1x1 conv to 4C + DepthToSpace.

    Output pixel (2i + a, 2j + b) of the transposed convolution is ``W[:, :, a, b]^T x[:, i, j]
    + bias``: the four kernel taps never overlap, so the layer is a 1x1 convolution to
    ``4 * out_channels`` channels (channel ``4c + 2a + b`` holds tap (a, b) of class c) followed
    by ``pixel_shuffle(2)`` (ONNX ``DepthToSpace``, mode CRD). Same weights, same function up
    to float summation order. Only on request (``export_activations(..., depth_to_space=True)``):
    ONNX Runtime 1.32's ``DepthToSpace`` turned out slower than its ``ConvTranspose``.

    (N, C_in, h, w) -> (N, C_out, 2h, 2w).
    """

    def __init__(self, transposed: nn.ConvTranspose2d) -> None:
        super().__init__()
        if not is_depth_to_space_transpose(transposed):
            raise ValueError('only 2x2 stride-2 ConvTranspose2d without padding, groups or '
                             'dilation can be rewritten')
        weight = transposed.weight.detach()  # (C_in, C_out, 2, 2)
        in_channels, out_channels = weight.shape[:2]
        self.conv = nn.Conv2d(in_channels, 4 * out_channels, 1,
                              bias=transposed.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(weight.permute(1, 2, 3, 0).reshape(
                4 * out_channels, in_channels, 1, 1))
            if transposed.bias is not None:
                self.conv.bias.copy_(transposed.bias.detach().repeat_interleave(4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(features), 2)


def is_depth_to_space_transpose(module: nn.Module) -> bool:
    """True for an ``nn.ConvTranspose2d`` that ``DepthToSpaceConvTranspose`` can replace."""
    return (isinstance(module, nn.ConvTranspose2d) and tuple(module.kernel_size) == (2, 2)
            and tuple(module.stride) == (2, 2) and tuple(module.padding) == (0, 0)
            and tuple(module.output_padding) == (0, 0) and tuple(module.dilation) == (1, 1)
            and module.groups == 1)


def _rewritable(module: nn.Module, depth_to_space: bool) -> bool:
    return ((isinstance(module, nn.PReLU) and module.num_parameters > 1)
            or (depth_to_space and is_depth_to_space_transpose(module)))


def _rewritten(child: nn.Module, depth_to_space: bool) -> Optional[nn.Module]:
    if isinstance(child, nn.PReLU) and child.num_parameters > 1:
        return DepthwisePReLU(child).to(child.weight.device, child.weight.dtype)
    if depth_to_space and is_depth_to_space_transpose(child):
        return DepthToSpaceConvTranspose(child).to(child.weight.device, child.weight.dtype)
    return None


def export_activations(module: nn.Module, depth_to_space: bool = False) -> nn.Module:
    """A copy of ``module`` with the export rewrites: every per-channel ``nn.PReLU`` as
    ``DepthwisePReLU`` and, with ``depth_to_space``, every 2x2 stride-2
    ``nn.ConvTranspose2d`` as ``DepthToSpaceConvTranspose`` (same weights, same function).

    ``depth_to_space`` is off for the exported packages: measured on ENet 1024x512 with
    ONNX Runtime 1.32 (CPU, 2 threads), its ``DepthToSpace`` kernel is a generic 6-D
    transpose that costs more than the ``ConvTranspose`` it replaces (full conv 25.6 ms ->
    11.1 ms Conv + 45.4 ms DepthToSpace; the two decoder layers 3.8 -> 15.3 ms).

    The original is untouched; a module with nothing to rewrite comes back as it is.
    """
    import copy
    if not any(_rewritable(m, depth_to_space) for m in module.modules()):
        return module
    rewritten = copy.deepcopy(module)
    for parent in rewritten.modules():
        for name, child in list(parent.named_children()):
            replacement = _rewritten(child, depth_to_space)
            if replacement is not None:
                setattr(parent, name, replacement)
    return rewritten


def packed_transposed_conv(transposed: nn.ConvTranspose2d, features: torch.Tensor
                           ) -> torch.Tensor:
    """A 2x2 stride-2 transposed convolution whose output stays packed, channels last.

    Output pixel (2i + a, 2j + b) of the layer is ``W[:, :, a, b]^T x[:, i, j] + bias``
    (the taps never overlap), so all four pixels of block (i, j) are one matmul of the
    block's input vector with the (C_in, 4 C_out) weight, taps (a, b) outer, classes inner
    (with a bias: the vector gains a 1 and the weight a last row, the bias once per tap).
    The result is returned in that layout instead of being scattered to full resolution:
    a reduction over classes then reads contiguous memory (an ONNX Runtime ``ArgMax`` over
    the last axis is ~2.5x faster than over the channel axis of NCHW) and the full-size
    NCHW tensor is never written. ``postprocess.packed`` unpacks the per-pixel results.

    Args:
        transposed: A layer accepted by ``is_depth_to_space_transpose``.
        features: (B, C_in, h, w).

    Returns:
        (B, h * w * 4, C_out), row ``((i * w + j) * 2 + a) * 2 + b`` = output pixel
        (2i + a, 2j + b).
    """
    batch, in_channels, height, width = features.shape
    out_channels = transposed.out_channels
    # (C_in, C_out, 2, 2) -> (C_in, 2, 2, C_out) -> (C_in, 4 C_out); folded at export.
    weight = transposed.weight.permute(0, 2, 3, 1).reshape(in_channels, 4 * out_channels)
    if transposed.bias is not None:
        # The bias rides in the MatMul as a last input row of ones: a separate Add would be
        # one more pass over the 4 C_out x h x w result (as long as the MatMul itself in ONNX
        # Runtime). The ones are derived from the data: a constant would need its shape.
        features = torch.cat([features, features[:, :1] * 0.0 + 1.0], dim=1)
        bias = torch.cat([transposed.bias] * 4).reshape(1, 4 * out_channels)
        weight = torch.cat([weight, bias], dim=0)
    rows = features.reshape(batch, features.shape[1], height * width).transpose(1, 2)
    return torch.matmul(rows, weight).reshape(batch, height * width * 4, out_channels)
