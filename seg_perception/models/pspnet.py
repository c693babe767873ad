"""PSPNet (Zhao et al. 2017): ResNet at output stride 8 + pyramid pooling module.

Pyramid pooling without adaptive pooling: ``AdaptiveAvgPool2d(bin)`` only exports to ONNX
(and runs on TensorRT) when it reduces to a plain ``AveragePool``. So the bins are
(1, 2, 4, 8) instead of the paper's (1, 2, 3, 6), and the input must be a multiple of
``size_divisor`` = 64: the stride-8 feature map is then a multiple of 8 on both sides and
every bin is an explicit ``AvgPool`` with kernel = stride = feature size / bin, its size read
once at trace time (static shapes). Each pooled map is upsampled back with a constant-scale
bilinear ``Resize``. A feature map that the bins do not divide raises ``ValueError``.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .backbones import build_backbone
from .heads import check_input, SegmentationHeads
from .layers import conv_bn_act, static_spatial_size
from .registry import register_model

PYRAMID_BINS = (1, 2, 4, 8)
OUTPUT_STRIDE = 8
SIZE_DIVISOR = OUTPUT_STRIDE * max(PYRAMID_BINS)


class PyramidPooling(nn.Module):
    """Pyramid pooling module.

    Input float (N, in_channels, h, w), h and w multiples of every bin ->
    float (N, out_channels, h, w). Each bin: AvgPool to bin x bin, 1x1 conv to in/4 channels
    (with bias and ReLU, no batch norm, so batch-size-1 training works on the 1x1 bin),
    bilinear upsampling; then concatenation with the input and a 3x3 conv + BN + ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 bins: Sequence[int] = PYRAMID_BINS) -> None:
        super().__init__()
        self.bins = tuple(bins)
        branch_channels = in_channels // len(self.bins)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, branch_channels, 1), nn.ReLU(inplace=True))
            for _ in self.bins)
        self.bottleneck = conv_bn_act(in_channels + branch_channels * len(self.bins),
                                      out_channels, 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        height, width = static_spatial_size(features)
        pyramid = [features]
        for bin_size, branch in zip(self.bins, self.branches):
            if height % bin_size or width % bin_size:
                raise ValueError(
                    f'PSPNet: feature map {width}x{height} (WxH) is not divisible by pyramid '
                    f'bin {bin_size}; use inputs that are multiples of {SIZE_DIVISOR}')
            kernel = (height // bin_size, width // bin_size)
            pooled = branch(F.avg_pool2d(features, kernel_size=kernel, stride=kernel))
            pyramid.append(F.interpolate(pooled, scale_factor=(float(kernel[0]), float(kernel[1])),
                                         mode='bilinear', align_corners=False))
        return self.bottleneck(torch.cat(pyramid, dim=1))


class PSPNet(nn.Module):
    """PSPNet on a ResNet (output stride 8), heads at stride 8.

    forward: float (N, 3, H, W), H and W multiples of 64 -> dict as in ``registry``:
    ``semantic`` (N, C, H, W) [+ ``center`` (N, 1, H/8, W/8), ``offset`` (N, 2, H/8, W/8)]
    (``instance_stride`` 8).
    """

    size_divisor = SIZE_DIVISOR

    def __init__(self, backbone: str, num_classes: int, panoptic: bool) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.panoptic = panoptic
        self.encoder = build_backbone(backbone, output_stride=OUTPUT_STRIDE)
        channels = self.encoder.out_channels // 4
        self.pyramid = PyramidPooling(self.encoder.out_channels, channels)
        self.heads = SegmentationHeads(channels, num_classes, stride=OUTPUT_STRIDE,
                                       panoptic=panoptic, dropout=0.1)
        self.instance_stride = self.heads.stride

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_input(images, self.size_divisor, type(self).__name__)
        return self.heads(self.pyramid(self.encoder(images).out))


@register_model('pspnet_resnet18', 'PSPNet, ResNet-18 OS8, pyramid bins 1/2/4/8',
                size_divisor=SIZE_DIVISOR)
def pspnet_resnet18(num_classes: int = 19, panoptic: bool = False) -> PSPNet:
    return PSPNet('resnet18', num_classes, panoptic)


@register_model('pspnet_resnet50', 'PSPNet, ResNet-50 OS8, pyramid bins 1/2/4/8',
                size_divisor=SIZE_DIVISOR)
def pspnet_resnet50(num_classes: int = 19, panoptic: bool = False) -> PSPNet:
    return PSPNet('resnet50', num_classes, panoptic)
