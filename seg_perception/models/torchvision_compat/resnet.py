"""ResNet-50 / ResNet-101 with torchvision's module names, dilated to output stride 8.

The same network as torchvision's ``resnet50`` / ``resnet101`` built with
``replace_stride_with_dilation=[False, True, True]`` (what its FCN and DeepLabv3 use), minus
the pooling and fully connected classifier, which the segmentation models drop. State-dict
names and shapes are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0`` ...), so its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

#: Bottleneck blocks per stage.
RESNET_LAYERS: Dict[int, Tuple[int, int, int, int]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
EXPANSION = 4
OUTPUT_STRIDE = 8


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (the stride or the dilation is here, "ResNet v1.5"), 1x1 expand x4.

    float (N, in_channels, H, W) -> float (N, 4 * width, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        identity = features if self.downsample is None else self.downsample(features)
        out = self.relu(self.bn1(self.conv1(features)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class DilatedResNet(nn.Module):
    """ResNet-50/101 encoder at output stride 8: layer3 dilated 2, layer4 dilated 4.

    ``forward``: float (N, 3, H, W), H and W multiples of 8 -> layer4's float
    (N, 2048, H / 8, W / 8).
    """

    out_channels = 512 * EXPANSION

    def __init__(self, depth: int) -> None:
        super().__init__()
        if depth not in RESNET_LAYERS:
            raise ValueError(f'ResNet depth {depth} is not supported; valid: 50, 101')
        counts = RESNET_LAYERS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._in_channels = 64
        self._dilation = 1
        self.layer1 = self._make_layer(64, counts[0], stride=1, dilate=False)
        self.layer2 = self._make_layer(128, counts[1], stride=2, dilate=False)
        self.layer3 = self._make_layer(256, counts[2], stride=2, dilate=True)
        self.layer4 = self._make_layer(512, counts[3], stride=2, dilate=True)

    def _make_layer(self, width: int, count: int, stride: int, dilate: bool) -> nn.Sequential:
        # As torchvision: a dilated stage keeps the previous dilation in its first block and
        # trades its stride for dilation in the others; the projection shortcut then has
        # stride 1 too.
        first_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out_channels = width * EXPANSION
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self._in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        blocks: List[nn.Module] = [
            Bottleneck(self._in_channels, width, stride, first_dilation, downsample)]
        self._in_channels = out_channels
        blocks += [Bottleneck(out_channels, width, dilation=self._dilation)
                   for _ in range(count - 1)]
        return nn.Sequential(*blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer4(self.layer3(self.layer2(self.layer1(features))))
