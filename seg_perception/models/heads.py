"""Prediction heads shared by every architecture: semantic logits and Panoptic-DeepLab
instance centre heatmap + centre offsets.

Each architecture ends in one decoder feature map at some stride (4 for DeepLabv3+,
16 for DeepLabv3 / FCN, 8 for PSPNet, 2 for ENet, 1 for U-Net). The heads run light conv
branches on it and upsample bilinearly (constant-scale ``Resize``) to input resolution.
Unlike Panoptic-DeepLab the semantic and instance branches share one decoder, which keeps
the extra cost of ``panoptic=True`` small.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from .layers import SeparableConv, static_spatial_size, upsample


class SemanticHead(nn.Module):
    """Optional dropout + 1x1 classifier, then bilinear upsampling by ``stride``.

    Input float (N, in_channels, H / stride, W / stride) -> logits float (N, C, H, W).
    """

    def __init__(self, in_channels: int, num_classes: int, stride: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.stride = stride
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return upsample(self.classifier(self.dropout(features)), self.stride)


class InstanceHead(nn.Module):
    """Panoptic-DeepLab centre and offset branches.

    Each branch is a 5x5 depthwise-separable conv (``head_channels`` wide) and a 1x1 conv.
    Offsets are regressed in pixels of the feature map and multiplied by ``stride`` after
    upsampling, so the output is in input pixels.

    Input float (N, in_channels, H / stride, W / stride) -> dict
    ``center`` float (N, 1, H, W) (regressed heatmap, no sigmoid) and
    ``offset`` float (N, 2, H, W) ((dy, dx) from each pixel to its instance centre).
    """

    def __init__(self, in_channels: int, stride: int, head_channels: int = 32) -> None:
        super().__init__()
        self.stride = stride
        self.center = nn.Sequential(SeparableConv(in_channels, head_channels, 5),
                                    nn.Conv2d(head_channels, 1, 1))
        self.offset = nn.Sequential(SeparableConv(in_channels, head_channels, 5),
                                    nn.Conv2d(head_channels, 2, 1))

    def forward(self, features: torch.Tensor) -> Dict[str, torch.Tensor]:
        center = upsample(self.center(features), self.stride)
        offset = upsample(self.offset(features), self.stride)
        if self.stride != 1:
            offset = offset * float(self.stride)
        return {'center': center, 'offset': offset}


class SegmentationHeads(nn.Module):
    """Semantic head plus, when ``panoptic``, the instance head, on one decoder feature map.

    Returns the registry's output dict: ``semantic`` (N, C, H, W) and, when panoptic,
    ``center`` (N, 1, H, W) and ``offset`` (N, 2, H, W); all float32 at input resolution.
    """

    def __init__(self, in_channels: int, num_classes: int, stride: int, panoptic: bool,
                 dropout: float = 0.0, head_channels: int = 32) -> None:
        super().__init__()
        self.semantic = SemanticHead(in_channels, num_classes, stride, dropout)
        self.instance = InstanceHead(in_channels, stride, head_channels) if panoptic else None

    def forward(self, features: torch.Tensor) -> Dict[str, torch.Tensor]:
        outputs = {'semantic': self.semantic(features)}
        if self.instance is not None:
            outputs.update(self.instance(features))
        return outputs


def check_input(images: torch.Tensor, size_divisor: int, model_name: str) -> None:
    """Raise ``ValueError`` unless ``images`` is (N, 3, H, W) with H, W multiples of
    ``size_divisor``."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f'{model_name} expects images of shape (N, 3, H, W), got {tuple(images.shape)}')
    height, width = static_spatial_size(images)
    if height % size_divisor or width % size_divisor:
        raise ValueError(
            f'{model_name}: input size {width}x{height} (WxH) is not a multiple of its '
            f'size_divisor {size_divisor}')
