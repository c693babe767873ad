"""U-Net (Ronneberger et al. 2015) with bilinear upsampling.

Four 2x max-pool downsamplings (so ``size_divisor`` = 16), double 3x3 conv + BN + ReLU per
level, widths ``base, 2 base, ..., 16 base`` halved at the bottom as in the common
"bilinear" variant. The decoder upsamples bilinearly (constant-scale ``Resize``) and applies
a double conv after concatenating the skip connection -- no transposed convs, so no
checkerboard artefacts. The heads run at full resolution (stride 1) on the last decoder map.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn

from .heads import check_input, SegmentationHeads
from .layers import conv_bn_act, upsample
from .registry import register_model

DEPTH = 4
SIZE_DIVISOR = 2 ** DEPTH


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_act(in_channels, out_channels, 3),
                         conv_bn_act(out_channels, out_channels, 3))


class UNet(nn.Module):
    """U-Net.

    forward: float (N, 3, H, W), H and W multiples of 16 -> dict as in ``registry``:
    ``semantic`` (N, C, H, W) [+ ``center`` (N, 1, H, W), ``offset`` (N, 2, H, W)]
    (``instance_stride`` 1).

    Args:
        num_classes: Semantic classes.
        panoptic: Add the centre / offset heads.
        base_width: Channels of the first level (32 keeps it trainable on a CPU).
    """

    size_divisor = SIZE_DIVISOR

    def __init__(self, num_classes: int, panoptic: bool, base_width: int = 32) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if base_width < 1:
            raise ValueError(f'base_width must be >= 1, got {base_width}')
        self.num_classes = num_classes
        self.panoptic = panoptic
        widths = [base_width * 2 ** level for level in range(DEPTH + 1)]
        widths[-1] //= 2  # bilinear variant: the bottom matches the last skip's width
        self.inlet = double_conv(3, widths[0])
        self.down = nn.ModuleList(double_conv(widths[level], widths[level + 1])
                                  for level in range(DEPTH))
        self.pool = nn.MaxPool2d(2)
        up: List[nn.Module] = []
        below = widths[-1]
        for level in reversed(range(DEPTH)):
            out_channels = widths[level] if level == 0 else widths[level] // 2
            up.append(double_conv(below + widths[level], out_channels))
            below = out_channels
        self.up = nn.ModuleList(up)
        self.heads = SegmentationHeads(below, num_classes, stride=1, panoptic=panoptic)
        self.instance_stride = self.heads.stride

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_input(images, self.size_divisor, type(self).__name__)
        skips = [self.inlet(images)]
        for block in self.down:
            skips.append(block(self.pool(skips[-1])))
        features = skips.pop()
        for block in self.up:
            features = block(torch.cat([upsample(features, 2), skips.pop()], dim=1))
        return self.heads(features)


@register_model('unet', 'U-Net, base width 32, bilinear upsampling', size_divisor=SIZE_DIVISOR)
def unet(num_classes: int = 19, panoptic: bool = False) -> UNet:
    return UNet(num_classes, panoptic)
