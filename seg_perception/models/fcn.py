"""FCN (Long et al. 2015) in the torchvision style: ResNet encoder + FCN head.

The encoder runs at output stride 16 (layer4 dilated), a compromise between FCN-32s quality
and the cost of torchvision's stride 8 (which would be ~3x the GFLOPs of ResNet-18 at
1024x512). The FCN head is a 3x3 conv to in/4 channels + BN + ReLU, then dropout 0.1 and the
1x1 classifier (``heads.SemanticHead``); the panoptic branches read the same head features.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from .backbones import build_backbone
from .heads import check_input, SegmentationHeads
from .layers import conv_bn_act
from .registry import register_model

SIZE_DIVISOR = 32
OUTPUT_STRIDE = 16


class FCN(nn.Module):
    """FCN on a ResNet.

    forward: float (N, 3, H, W), H and W multiples of 32 -> dict as in ``registry``:
    ``semantic`` (N, C, H, W) [+ ``center`` (N, 1, H/16, W/16), ``offset``
    (N, 2, H/16, W/16)] (``instance_stride`` 16).
    """

    size_divisor = SIZE_DIVISOR

    def __init__(self, backbone: str, num_classes: int, panoptic: bool) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.panoptic = panoptic
        self.encoder = build_backbone(backbone, output_stride=OUTPUT_STRIDE)
        head_channels = self.encoder.out_channels // 4
        self.head = conv_bn_act(self.encoder.out_channels, head_channels, 3)
        self.heads = SegmentationHeads(head_channels, num_classes, stride=OUTPUT_STRIDE,
                                       panoptic=panoptic, dropout=0.1)
        self.instance_stride = self.heads.stride

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_input(images, self.size_divisor, type(self).__name__)
        return self.heads(self.head(self.encoder(images).out))


@register_model('fcn_resnet18', 'FCN, ResNet-18 OS16', size_divisor=SIZE_DIVISOR)
def fcn_resnet18(num_classes: int = 19, panoptic: bool = False) -> FCN:
    return FCN('resnet18', num_classes, panoptic)


@register_model('fcn_resnet50', 'FCN, ResNet-50 OS16', size_divisor=SIZE_DIVISOR)
def fcn_resnet50(num_classes: int = 19, panoptic: bool = False) -> FCN:
    return FCN('resnet50', num_classes, panoptic)
