"""MobileNetV3-Large ``features`` with torchvision's module names, dilated to output stride 16.

The same layers as torchvision's ``mobilenet_v3_large(dilated=True).features`` (what its
DeepLabv3 and LR-ASPP use): ``0`` the stem, ``1``..``15`` the inverted residual blocks,
``16`` the 1x1 conv to 960 channels; the last stage (blocks 13..15) is dilated 2 instead of
strided. Every block is ``block.<i>`` of conv + BatchNorm (eps 0.001, momentum 0.01) +
activation sequences and an optional ``SqueezeExcitation`` (``fc1`` / ``fc2``), so the
state-dict names and shapes are torchvision's (``0.0.weight``, ``4.block.2.fc1.bias`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Type

import torch
from torch import nn

from ..layers import make_divisible

BN_EPS = 0.001
BN_MOMENTUM = 0.01
#: features index of the stride-8 block (torchvision's "C2", LR-ASPP's ``low``).
LOW_LEVEL_INDEX = 4
#: features index of the last layer (the 960-channel stride-16 map, ``high``).
HIGH_LEVEL_INDEX = 16
OUTPUT_STRIDE = 16


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                  dilation: int = 1, groups: int = 1,
                  activation: Optional[Type[nn.Module]] = nn.ReLU) -> nn.Sequential:
    """Conv (no bias, "same" padding) + BatchNorm(eps 0.001) [+ activation]: keys 0, 1."""
    layers: List[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=(kernel_size - 1) // 2 * dilation, dilation=dilation, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class BlockConfig:
    """One inverted residual block: input width, kernel, expanded width, output width,
    squeeze-excitation, hardswish (else ReLU), stride and dilation."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    use_hardswish: bool
    stride: int
    dilation: int = 1


#: MobileNetV3-Large (Howard et al. 2019, table 1), last stage dilated.
LARGE_DILATED: Sequence[BlockConfig] = (
    BlockConfig(16, 3, 16, 16, False, False, 1),
    BlockConfig(16, 3, 64, 24, False, False, 2),
    BlockConfig(24, 3, 72, 24, False, False, 1),
    BlockConfig(24, 5, 72, 40, True, False, 2),
    BlockConfig(40, 5, 120, 40, True, False, 1),
    BlockConfig(40, 5, 120, 40, True, False, 1),
    BlockConfig(40, 3, 240, 80, False, True, 2),
    BlockConfig(80, 3, 200, 80, False, True, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1),
    BlockConfig(80, 3, 480, 112, True, True, 1),
    BlockConfig(112, 3, 672, 112, True, True, 1),
    BlockConfig(112, 5, 672, 160, True, True, 2, dilation=2),
    BlockConfig(160, 5, 960, 160, True, True, 1, dilation=2),
    BlockConfig(160, 5, 960, 160, True, True, 1, dilation=2),
)


class SqueezeExcitation(nn.Module):
    """Global mean -> ``fc1`` 1x1 -> ReLU -> ``fc2`` 1x1 -> hardsigmoid, times the input.

    float (N, C, H, W) -> float (N, C, H, W).
    """

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.activation = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(features))))
        return self.scale_activation(scale) * features


class InvertedResidual(nn.Module):
    """[1x1 expand] -> k x k depthwise (strided, or dilated with stride 1) -> [SE] ->
    1x1 project, plus the input when the block keeps stride and width.

    float (N, in_channels, H, W) -> float (N, out_channels, H / s, W / s).
    """

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        activation = nn.Hardswish if config.use_hardswish else nn.ReLU
        self.use_residual = config.stride == 1 and config.in_channels == config.out_channels
        layers: List[nn.Module] = []
        if config.expanded != config.in_channels:
            layers.append(conv_norm_act(config.in_channels, config.expanded,
                                        activation=activation))
        stride = 1 if config.dilation > 1 else config.stride
        layers.append(conv_norm_act(config.expanded, config.expanded, config.kernel, stride,
                                    config.dilation, groups=config.expanded,
                                    activation=activation))
        if config.use_se:
            layers.append(SqueezeExcitation(config.expanded,
                                            make_divisible(config.expanded // 4, 8)))
        layers.append(conv_norm_act(config.expanded, config.out_channels, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        result = self.block(features)
        return result + features if self.use_residual else result


class MobileNetV3LargeFeatures(nn.Sequential):
    """The 17 feature layers, output stride 16.

    ``forward_features(images, keep)``: float (N, 3, H, W), H and W multiples of 16 ->
    ``{index: output}`` for each index in ``keep`` (``LOW_LEVEL_INDEX`` is float
    (N, 40, H / 8, W / 8), 16 is float (N, 960, H / 16, W / 16)).
    """

    out_channels = 960
    low_channels = LARGE_DILATED[LOW_LEVEL_INDEX - 1].out_channels

    def __init__(self) -> None:
        layers: List[nn.Module] = [conv_norm_act(3, 16, 3, stride=2, activation=nn.Hardswish)]
        layers += [InvertedResidual(config) for config in LARGE_DILATED]
        layers.append(conv_norm_act(LARGE_DILATED[-1].out_channels, self.out_channels,
                                    activation=nn.Hardswish))
        super().__init__(*layers)

    def forward_features(self, images: torch.Tensor,
                         keep: Sequence[int]) -> Dict[int, torch.Tensor]:
        kept: Dict[int, torch.Tensor] = {}
        features = images
        for index, layer in enumerate(self):
            features = layer(features)
            if index in keep:
                kept[index] = features
        return kept
