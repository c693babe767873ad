"""DeepLabv3 and DeepLabv3+ (Chen et al. 2017 / 2018) on MobileNetV3-Large or ResNet.

Encoder at output stride 16 -> ASPP (1x1, three atrous 3x3 at rates 6/12/18, image pooling)
-> for v3+, a decoder that fuses the stride-4 low-level features. The heads
(``heads.SegmentationHeads``) run on the ASPP output (v3, stride 16) or the decoder output
(v3+, stride 4).

Image pooling without a resize: ASPP concatenates its five branches and projects them with a
1x1 conv. That projection is linear, so the pooled branch's share of it can be computed on the
(N, C, 1, 1) pooled map and *broadcast-added* to the other branches' projection before the
batch norm -- mathematically the same as "pool, upsample to the feature size, concatenate,
project", but the ONNX graph is ReduceMean / Conv / Add with static shapes and no ``Resize``.
The pooled branch has a bias and no batch norm, so training with batch size 1 works.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import nn

from .backbones import build_backbone
from .heads import check_input, SegmentationHeads
from .layers import conv_bn_act, SeparableConv, upsample
from .registry import register_model

ASPP_RATES_OS16 = (6, 12, 18)
SIZE_DIVISOR = 32


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling.

    Input float (N, in_channels, h, w) -> float (N, channels, h, w).

    Args:
        in_channels: Encoder channels.
        channels: Width of every branch and of the output.
        rates: Dilation rates of the three 3x3 branches (6, 12, 18 at output stride 16).
        separable: Depthwise-separable 3x3 branches (DeepLabv3+ paper's lean variant).
        dropout: Dropout after the projection (0.1 as in DeepLab).
    """

    def __init__(self, in_channels: int, channels: int = 256,
                 rates: Sequence[int] = ASPP_RATES_OS16, separable: bool = False,
                 dropout: float = 0.1) -> None:
        super().__init__()
        branches = [conv_bn_act(in_channels, channels, 1)]
        for rate in rates:
            if separable:
                branches.append(SeparableConv(in_channels, channels, 3, dilation=rate))
            else:
                branches.append(conv_bn_act(in_channels, channels, 3, dilation=rate))
        self.branches = nn.ModuleList(branches)
        self.pooling = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.ReLU(inplace=True))
        self.project_branches = nn.Conv2d(channels * len(branches), channels, 1, bias=False)
        self.project_pooling = nn.Conv2d(channels, channels, 1, bias=False)
        self.project_norm = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                          nn.Dropout(dropout))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        spatial = torch.cat([branch(features) for branch in self.branches], dim=1)
        pooled = self.pooling(features.mean(dim=(2, 3), keepdim=True))
        projected = self.project_branches(spatial) + self.project_pooling(pooled)
        return self.project_norm(projected)


class DeepLabV3Plus(nn.Module):
    """DeepLabv3 (``decoder=False``) or DeepLabv3+ (``decoder=True``).

    forward: float (N, 3, H, W), H and W multiples of ``size_divisor`` (32) -> dict as in
    ``registry``: ``semantic`` (N, C, H, W) [+ ``center`` (N, 1, H/r, W/r), ``offset``
    (N, 2, H/r, W/r), r = ``instance_stride``: 4 with the decoder, else 16].

    Args:
        backbone: ``mobilenetv3``, ``resnet18`` or ``resnet50``.
        num_classes: Semantic classes.
        panoptic: Add the centre / offset heads.
        decoder: DeepLabv3+ decoder fusing stride-4 features.
        aspp_channels: ASPP width; the v3+ decoder uses the same width.
        separable: Depthwise-separable ASPP and decoder convs.
        low_level_channels: Width the stride-4 features are reduced to (48 in the paper).
    """

    size_divisor = SIZE_DIVISOR

    def __init__(self, backbone: str, num_classes: int, panoptic: bool, decoder: bool,
                 aspp_channels: int = 256, separable: bool = False,
                 low_level_channels: int = 48) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.panoptic = panoptic
        self.encoder = build_backbone(backbone, output_stride=16)
        self.aspp = ASPP(self.encoder.out_channels, aspp_channels, separable=separable)
        self.has_decoder = decoder
        if decoder:
            self.low_level = conv_bn_act(self.encoder.low_channels, low_level_channels, 1)
            fused = aspp_channels + low_level_channels
            if separable:
                self.decoder = nn.Sequential(SeparableConv(fused, aspp_channels, 3),
                                             SeparableConv(aspp_channels, aspp_channels, 3))
            else:
                self.decoder = nn.Sequential(conv_bn_act(fused, aspp_channels, 3),
                                             conv_bn_act(aspp_channels, aspp_channels, 3))
        self.heads = SegmentationHeads(aspp_channels, num_classes, stride=4 if decoder else 16,
                                       panoptic=panoptic)
        self.instance_stride = self.heads.stride

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_input(images, self.size_divisor, type(self).__name__)
        features = self.encoder(images)
        context = self.aspp(features.out)
        if self.has_decoder:
            context = torch.cat([upsample(context, 4), self.low_level(features.low)], dim=1)
            context = self.decoder(context)
        return self.heads(context)


@register_model('deeplabv3_mobilenetv3', 'DeepLabv3, MobileNetV3-Large OS16, separable ASPP 128',
                size_divisor=SIZE_DIVISOR)
def deeplabv3_mobilenetv3(num_classes: int = 19, panoptic: bool = False) -> DeepLabV3Plus:
    return DeepLabV3Plus('mobilenetv3', num_classes, panoptic, decoder=False,
                         aspp_channels=128, separable=True)


@register_model('deeplabv3plus_mobilenetv3',
                'DeepLabv3+, MobileNetV3-Large OS16, separable ASPP/decoder 128, stride-4 '
                'decoder', size_divisor=SIZE_DIVISOR)
def deeplabv3plus_mobilenetv3(num_classes: int = 19, panoptic: bool = False) -> DeepLabV3Plus:
    return DeepLabV3Plus('mobilenetv3', num_classes, panoptic, decoder=True,
                         aspp_channels=128, separable=True)


@register_model('deeplabv3_resnet18', 'DeepLabv3, ResNet-18 OS16, ASPP 256',
                size_divisor=SIZE_DIVISOR)
def deeplabv3_resnet18(num_classes: int = 19, panoptic: bool = False) -> DeepLabV3Plus:
    return DeepLabV3Plus('resnet18', num_classes, panoptic, decoder=False)


@register_model('deeplabv3plus_resnet18', 'DeepLabv3+, ResNet-18 OS16, ASPP 256, stride-4 decoder',
                size_divisor=SIZE_DIVISOR)
def deeplabv3plus_resnet18(num_classes: int = 19, panoptic: bool = False) -> DeepLabV3Plus:
    return DeepLabV3Plus('resnet18', num_classes, panoptic, decoder=True)


@register_model('deeplabv3_resnet50', 'DeepLabv3, ResNet-50 OS16, ASPP 256',
                size_divisor=SIZE_DIVISOR)
def deeplabv3_resnet50(num_classes: int = 19, panoptic: bool = False) -> DeepLabV3Plus:
    return DeepLabV3Plus('resnet50', num_classes, panoptic, decoder=False)


@register_model('deeplabv3plus_resnet50', 'DeepLabv3+, ResNet-50 OS16, ASPP 256, stride-4 decoder',
                size_divisor=SIZE_DIVISOR)
def deeplabv3plus_resnet50(num_classes: int = 19, panoptic: bool = False) -> DeepLabV3Plus:
    return DeepLabV3Plus('resnet50', num_classes, panoptic, decoder=True)
