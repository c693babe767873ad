"""Encoders written here in plain PyTorch: MobileNetV3-Large and ResNet-18 / ResNet-50.

Each backbone's ``forward(x)`` takes float (N, 3, H, W) and returns a ``BackboneFeatures``
with ``low`` (stride 4, ``low_channels``) for decoders and ``out`` (stride
``output_stride``, ``out_channels``). The output stride is set by replacing the stride of the
last stage(s) with dilation, as in DeepLab: 32 (no dilation), 16 or 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Sequence, Type, Union

import torch
from torch import nn

from .layers import conv_bn_act, make_divisible, SqueezeExcite

VALID_OUTPUT_STRIDES = (8, 16, 32)


class BackboneFeatures(NamedTuple):
    """Encoder outputs: ``low`` float (N, low_channels, H/4, W/4) and
    ``out`` float (N, out_channels, H/output_stride, W/output_stride)."""

    low: torch.Tensor
    out: torch.Tensor


def _check_output_stride(output_stride: int, valid: Sequence[int] = VALID_OUTPUT_STRIDES) -> None:
    if output_stride not in valid:
        raise ValueError(
            f'output_stride {output_stride} is not supported; valid: '
            f'{", ".join(str(s) for s in valid)}')


# ---------------------------------------------------------------------------- MobileNetV3


@dataclass(frozen=True)
class InvertedResidualConfig:
    """One MobileNetV3 block: kernel, expanded width, output width, SE, hardswish, stride."""

    kernel: int
    expanded: int
    out: int
    use_se: bool
    use_hardswish: bool
    stride: int


# MobileNetV3-Large (Howard et al. 2019, table 1).
MOBILENETV3_LARGE: Sequence[InvertedResidualConfig] = (
    InvertedResidualConfig(3, 16, 16, False, False, 1),
    InvertedResidualConfig(3, 64, 24, False, False, 2),
    InvertedResidualConfig(3, 72, 24, False, False, 1),   # -> stride 4 (low-level features)
    InvertedResidualConfig(5, 72, 40, True, False, 2),
    InvertedResidualConfig(5, 120, 40, True, False, 1),
    InvertedResidualConfig(5, 120, 40, True, False, 1),
    InvertedResidualConfig(3, 240, 80, False, True, 2),
    InvertedResidualConfig(3, 200, 80, False, True, 1),
    InvertedResidualConfig(3, 184, 80, False, True, 1),
    InvertedResidualConfig(3, 184, 80, False, True, 1),
    InvertedResidualConfig(3, 480, 112, True, True, 1),
    InvertedResidualConfig(3, 672, 112, True, True, 1),
    InvertedResidualConfig(5, 672, 160, True, True, 2),
    InvertedResidualConfig(5, 960, 160, True, True, 1),
    InvertedResidualConfig(5, 960, 160, True, True, 1),
)
_MOBILENET_LOW_LEVEL_BLOCK = 2  # index of the last block at stride 4


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise k x k (stride or dilation) -> SE -> project 1x1 (+ residual)."""

    def __init__(self, in_channels: int, config: InvertedResidualConfig, stride: int,
                 dilation: int) -> None:
        super().__init__()
        activation = nn.Hardswish if config.use_hardswish else nn.ReLU
        self.use_residual = stride == 1 and in_channels == config.out
        layers: List[nn.Module] = []
        if config.expanded != in_channels:
            layers.append(conv_bn_act(in_channels, config.expanded, 1, activation=activation))
        layers.append(conv_bn_act(config.expanded, config.expanded, config.kernel, stride=stride,
                                  dilation=dilation, groups=config.expanded,
                                  activation=activation))
        if config.use_se:
            layers.append(SqueezeExcite(config.expanded, make_divisible(config.expanded // 4)))
        layers.append(conv_bn_act(config.expanded, config.out, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        result = self.block(features)
        return result + features if self.use_residual else result


class MobileNetV3Large(nn.Module):
    """MobileNetV3-Large encoder with the final 1x1 conv to 960 channels (no classifier).

    ``low`` is the 24-channel stride-4 map, ``out`` the 960-channel map at ``output_stride``.
    """

    low_channels = 24
    out_channels = 960

    def __init__(self, output_stride: int = 16) -> None:
        super().__init__()
        _check_output_stride(output_stride)
        self.output_stride = output_stride
        self.stem = conv_bn_act(3, 16, 3, stride=2, activation=nn.Hardswish)
        blocks: List[nn.Module] = []
        in_channels, stride_so_far, dilation = 16, 2, 1
        for config in MOBILENETV3_LARGE:
            stride = config.stride
            if stride > 1 and stride_so_far >= output_stride:
                dilation *= stride
                stride = 1
            else:
                stride_so_far *= stride
            blocks.append(InvertedResidual(in_channels, config, stride, dilation))
            in_channels = config.out
        self.low_level = nn.Sequential(*blocks[:_MOBILENET_LOW_LEVEL_BLOCK + 1])
        self.high_level = nn.Sequential(
            *blocks[_MOBILENET_LOW_LEVEL_BLOCK + 1:],
            conv_bn_act(in_channels, self.out_channels, 1, activation=nn.Hardswish))

    def forward(self, images: torch.Tensor) -> BackboneFeatures:
        low = self.low_level(self.stem(images))
        return BackboneFeatures(low=low, out=self.high_level(low))


# ---------------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    """ResNet-18/34 block: two 3x3 convs (the first may be strided or dilated)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1,
                 downsample: Union[nn.Module, None] = None) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(in_channels, width, 3, stride=stride, dilation=dilation)
        self.conv2 = conv_bn_act(width, width, 3, dilation=dilation, activation=None)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        identity = features if self.downsample is None else self.downsample(features)
        return self.relu(self.conv2(self.conv1(features)) + identity)


class Bottleneck(nn.Module):
    """ResNet-50 block: 1x1 reduce, 3x3 (strided or dilated, v1.5 style), 1x1 expand x4."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1,
                 downsample: Union[nn.Module, None] = None) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(in_channels, width, 1)
        self.conv2 = conv_bn_act(width, width, 3, stride=stride, dilation=dilation)
        self.conv3 = conv_bn_act(width, width * self.expansion, 1, activation=None)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        identity = features if self.downsample is None else self.downsample(features)
        return self.relu(self.conv3(self.conv2(self.conv1(features))) + identity)


ResNetBlock = Type[Union[BasicBlock, Bottleneck]]
RESNET_DEPTHS = {18: (BasicBlock, (2, 2, 2, 2)), 50: (Bottleneck, (3, 4, 6, 3))}


class ResNet(nn.Module):
    """ResNet-18 or ResNet-50 encoder (no pooling head / classifier).

    ``low`` is layer1 (stride 4; 64 or 256 channels); ``out`` is layer4 (512 or 2048
    channels) at ``output_stride``, layers 3/4 dilated instead of strided as needed.
    """

    def __init__(self, depth: int = 18, output_stride: int = 16) -> None:
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ValueError(
                f'ResNet depth {depth} is not supported; valid: '
                f'{", ".join(str(d) for d in RESNET_DEPTHS)}')
        _check_output_stride(output_stride)
        block, counts = RESNET_DEPTHS[depth]
        self.depth = depth
        self.output_stride = output_stride
        self.low_channels = 64 * block.expansion
        self.out_channels = 512 * block.expansion
        self.stem = nn.Sequential(conv_bn_act(3, 64, 7, stride=2),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        self._in_channels = 64
        self._dilation = 1
        self._stride_so_far = 4
        self.layer1 = self._make_layer(block, 64, counts[0], 1)
        self.layer2 = self._make_layer(block, 128, counts[1], 2)
        self.layer3 = self._make_layer(block, 256, counts[2], 2)
        self.layer4 = self._make_layer(block, 512, counts[3], 2)

    def _make_layer(self, block: ResNetBlock, width: int, count: int,
                    stride: int) -> nn.Sequential:
        first_dilation = self._dilation
        if stride > 1 and self._stride_so_far >= self.output_stride:
            self._dilation *= stride
            stride = 1
        else:
            self._stride_so_far *= stride
        out_channels = width * block.expansion
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            downsample = conv_bn_act(self._in_channels, out_channels, 1, stride=stride,
                                     activation=None)
        blocks = [block(self._in_channels, width, stride, first_dilation, downsample)]
        self._in_channels = out_channels
        blocks += [block(out_channels, width, 1, self._dilation) for _ in range(count - 1)]
        return nn.Sequential(*blocks)

    def forward(self, images: torch.Tensor) -> BackboneFeatures:
        low = self.layer1(self.stem(images))
        out = self.layer4(self.layer3(self.layer2(low)))
        return BackboneFeatures(low=low, out=out)


def build_backbone(name: str, output_stride: int) -> Union[MobileNetV3Large, ResNet]:
    """``mobilenetv3`` (MobileNetV3-Large), ``resnet18`` or ``resnet50``."""
    if name == 'mobilenetv3':
        return MobileNetV3Large(output_stride)
    if name == 'resnet18':
        return ResNet(18, output_stride)
    if name == 'resnet50':
        return ResNet(50, output_stride)
    raise ValueError(f'unknown backbone {name!r}; valid: mobilenetv3, resnet18, resnet50')
