"""Prediction heads shared by every architecture: semantic logits and Panoptic-DeepLab
instance centre heatmap + centre offsets.

Each architecture ends in one decoder feature map at some stride (4 for DeepLabv3+,
16 for DeepLabv3 / FCN, 8 for PSPNet, 1 for U-Net; ENet reads stride 4 for its instance
outputs and stride 2 for the semantic ones). The semantic head upsamples its logits
bilinearly (constant-scale ``Resize``) to input resolution; the instance head stays at the
features' stride (see ``InstanceHead``). Unlike Panoptic-DeepLab the semantic and instance
branches share one decoder, which keeps the extra cost of ``panoptic=True`` small.
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
    """Panoptic-DeepLab centre heatmap and centre offsets, at the features' own stride.

    One 5x5 depthwise-separable conv (``head_channels`` wide) shared by both outputs, then a
    single 1x1 conv to three channels (heatmap, dy, dx): half the cost of two separate
    branches, which matters because the instance outputs are the whole price of
    ``panoptic=True``. Offsets are regressed in feature-map pixels and multiplied by
    ``stride``, so they are in input pixels.

    There is no upsampling here. The fused post-processing reads the maps on its grouping
    grid (``postprocess.grid.heads_to_grid``), and training upsamples them to the targets'
    resolution (``upsample_instance_outputs``); resizing three channels to full resolution
    only to sample every fourth pixel was most of the panoptic overhead.

    Input float (N, in_channels, H / stride, W / stride) -> dict
    ``center`` float (N, 1, H / stride, W / stride) (regressed heatmap, no sigmoid) and
    ``offset`` float (N, 2, H / stride, W / stride) ((dy, dx) in input pixels from each
    location to its instance centre).
    """

    def __init__(self, in_channels: int, stride: int, head_channels: int = 32) -> None:
        super().__init__()
        self.stride = stride
        self.features = SeparableConv(in_channels, head_channels, 5)
        self.predict = nn.Conv2d(head_channels, 3, 1)

    def forward(self, features: torch.Tensor) -> Dict[str, torch.Tensor]:
        predicted = self.predict(self.features(features))
        offset = predicted[:, 1:]
        if self.stride != 1:
            offset = offset * float(self.stride)
        return {'center': predicted[:, :1], 'offset': offset}


def upsample_instance_outputs(outputs: Dict[str, torch.Tensor], height: int,
                              width: int) -> Dict[str, torch.Tensor]:
    """``center`` / ``offset`` bilinearly upsampled to (height, width) (training losses).

    Args:
        outputs: A network's output dict; ``center`` (N, 1, H / r, W / r) and ``offset``
            (N, 2, H / r, W / r) with the same integer r in both directions.
        height, width: Target size H, W.

    Returns:
        A new dict with ``center`` (N, 1, H, W) and ``offset`` (N, 2, H, W); other entries
        unchanged. Offsets are already in input pixels, so only their grid changes.
    """
    upsampled = dict(outputs)
    for key in ('center', 'offset'):
        if key not in outputs:
            continue
        value = outputs[key]
        factor = height // value.shape[-2]
        if factor * value.shape[-2] != height or factor * value.shape[-1] != width:
            raise ValueError(f'{key} of shape {tuple(value.shape)} is not an integer '
                             f'downscale of {height}x{width} (HxW)')
        upsampled[key] = upsample(value, factor)
    return upsampled


class SegmentationHeads(nn.Module):
    """Semantic head plus, when ``panoptic``, the instance head, on one decoder feature map.

    Returns the registry's output dict: ``semantic`` (N, C, H, W) at input resolution and,
    when panoptic, ``center`` (N, 1, H / stride, W / stride) and ``offset``
    (N, 2, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, num_classes: int, stride: int, panoptic: bool,
                 dropout: float = 0.0, head_channels: int = 32) -> None:
        super().__init__()
        self.stride = stride
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
