"""torchvision's FCN, DeepLabv3 and LR-ASPP, registered as ``torchvision_<builder>``.

Each network has torchvision's state-dict names and shapes (``backbone.*``, ``classifier.*``)
without its training-only ``aux_classifier``, and computes the same logits as torchvision's
``model(x)['out']``:

- ``torchvision_fcn_resnet50`` / ``_resnet101``: dilated ResNet (output stride 8) ->
  ``FCNHead`` (3x3 conv to 512 channels, 1x1 classifier);
- ``torchvision_deeplabv3_resnet50`` / ``_resnet101``: dilated ResNet (output stride 8) ->
  ``DeepLabHead`` (ASPP at rates 12/24/36, 3x3 conv, 1x1 classifier);
- ``torchvision_deeplabv3_mobilenet_v3_large``: dilated MobileNetV3-Large (output stride
  16) -> ``DeepLabHead``;
- ``torchvision_lraspp_mobilenet_v3_large``: dilated MobileNetV3-Large, its stride-8 and
  stride-16 features -> ``LRASPPHead``.

torchvision resizes its logits to the input size with ``F.interpolate(size=...)``; here H
and W must be multiples of the output stride (8 for ResNet, 16 for MobileNetV3), so the same
bilinear (``align_corners=False``) resize is an integer factor and exports as a constant-scale
``Resize``, like every graph of this project. ASPP's image pooling branch is broadcast
instead of bilinearly resized from 1x1 (see ``ASPP``): the same values.

With ``panoptic=True`` the project's ``heads.InstanceHead`` (``instance.*``, freshly
initialised) reads the classifier's last hidden features, so a torchvision checkpoint can
start a panoptic fine-tune; the semantic path is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..heads import check_input, InstanceHead
from ..layers import upsample
from ..registry import register_model
from .mobilenetv3 import HIGH_LEVEL_INDEX, LOW_LEVEL_INDEX, MobileNetV3LargeFeatures
from .resnet import Bottleneck, DilatedResNet

ASPP_RATES = (12, 24, 36)
ASPP_CHANNELS = 256
LRASPP_CHANNELS = 128


class FCNHead(nn.Sequential):
    """3x3 conv to in/4 + BN + ReLU, dropout 0.1, 1x1 classifier (keys 0, 1, 4)."""

    hidden_layers = 3  # the instance head reads the output of layer 2 (ReLU)

    def __init__(self, in_channels: int, num_classes: int) -> None:
        self.hidden_channels = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, self.hidden_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(self.hidden_channels), nn.ReLU(), nn.Dropout(0.1),
            nn.Conv2d(self.hidden_channels, num_classes, 1))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 1,
                  dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=(kernel_size // 2) * dilation,
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU())


class ASPPPooling(nn.Sequential):
    """Global mean -> 1x1 conv + BN + ReLU (keys 1, 2: index 0 is the pooling).

    float (N, C, h, w) -> float (N, 256, 1, 1). torchvision then resizes it to (h, w),
    which copies the one value everywhere; ``ASPP`` broadcasts it instead.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1,
                                                            bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class ASPP(nn.Module):
    """1x1 branch, three 3x3 atrous branches, image pooling -> concat -> 1x1 projection,
    BN, ReLU, dropout 0.5. float (N, C, h, w) -> float (N, 256, h, w).

    The projection is linear, so the pooled branch's share of it is computed on its
    (N, 256, 1, 1) map and broadcast-added (as in ``models.deeplab``): the same sum as
    projecting the concatenation with the pooled map copied to (h, w), and the graph has
    neither a ``Resize`` nor an ``Expand`` of it.
    """

    def __init__(self, in_channels: int, rates: Sequence[int] = ASPP_RATES,
                 channels: int = ASPP_CHANNELS) -> None:
        super().__init__()
        branches = [_conv_bn_relu(in_channels, channels)]
        branches += [_conv_bn_relu(in_channels, channels, 3, rate) for rate in rates]
        branches.append(ASPPPooling(in_channels, channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Dropout(0.5))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        *spatial_branches, pooling = self.convs
        spatial = torch.cat([branch(features) for branch in spatial_branches], dim=1)
        weight = self.project[0].weight
        split = len(spatial_branches) * weight.shape[0]
        projected = F.conv2d(spatial, weight[:, :split]) + \
            F.conv2d(pooling(features), weight[:, split:])
        for layer in list(self.project)[1:]:
            projected = layer(projected)
        return projected


class DeepLabHead(nn.Sequential):
    """ASPP, 3x3 conv + BN + ReLU, 1x1 classifier (keys 0, 1, 2, 4)."""

    hidden_layers = 4
    hidden_channels = ASPP_CHANNELS

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(
            ASPP(in_channels), nn.Conv2d(ASPP_CHANNELS, ASPP_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(ASPP_CHANNELS), nn.ReLU(), nn.Conv2d(ASPP_CHANNELS, num_classes, 1))


class LRASPPHead(nn.Module):
    """Lite R-ASPP (Howard et al. 2019): ``cbr(high) * scale(high)``, upsampled x2, through
    ``high_classifier``, plus ``low_classifier(low)``.

    ``forward(low, high)``: low float (N, 40, H/8, W/8), high float (N, 960, H/16, W/16) ->
    (logits float (N, C, H/8, W/8), hidden features float (N, 128, H/8, W/8)).
    """

    def __init__(self, low_channels: int, high_channels: int, num_classes: int,
                 channels: int = LRASPP_CHANNELS) -> None:
        super().__init__()
        self.cbr = _conv_bn_relu(high_channels, channels)
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                   nn.Conv2d(high_channels, channels, 1, bias=False),
                                   nn.Sigmoid())
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, low: torch.Tensor,
                high: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        hidden = upsample(self.cbr(high) * self.scale(high), 2)
        return self.low_classifier(low) + self.high_classifier(hidden), hidden


class TorchvisionSegmentation(nn.Module):
    """Encoder (``backbone``) + head (``classifier``) with torchvision's names.

    forward: float (N, 3, H, W) normalised with ImageNet mean/std, H and W multiples of
    ``size_divisor`` -> dict as in ``registry``: ``semantic`` (N, C, H, W) logits
    [+ ``center`` (N, 1, H/r, W/r), ``offset`` (N, 2, H/r, W/r), r = ``instance_stride``].

    Args:
        kind: ``fcn``, ``deeplabv3`` or ``lraspp``.
        backbone: ``resnet50``, ``resnet101`` or ``mobilenet_v3_large``.
        num_classes: Output channels of the classifier (21 in torchvision's checkpoints).
        panoptic: Add the project's instance head (``instance.*``).
    """

    def __init__(self, kind: str, backbone: str, num_classes: int, panoptic: bool) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.kind, self.num_classes, self.panoptic = kind, num_classes, panoptic
        if backbone.startswith('resnet'):
            self.backbone: nn.Module = DilatedResNet(int(backbone[len('resnet'):]))
            self.size_divisor = 8
        else:
            self.backbone = MobileNetV3LargeFeatures()
            self.size_divisor = 16
        out_channels = self.backbone.out_channels
        if kind == 'lraspp':
            self.classifier: nn.Module = LRASPPHead(
                self.backbone.low_channels, out_channels, num_classes)
            self.logit_stride, hidden_channels = 8, LRASPP_CHANNELS
        else:
            head = FCNHead if kind == 'fcn' else DeepLabHead
            self.classifier = head(out_channels, num_classes)
            self.logit_stride, hidden_channels = self.size_divisor, self.classifier.hidden_channels
        self.instance_stride = self.logit_stride
        initialise(self.backbone)
        initialise(self.classifier)
        self.instance: Optional[InstanceHead] = (
            InstanceHead(hidden_channels, self.instance_stride) if panoptic else None)

    def _logits_and_hidden(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.kind == 'lraspp':
            kept = self.backbone.forward_features(images, (LOW_LEVEL_INDEX, HIGH_LEVEL_INDEX))
            return self.classifier(kept[LOW_LEVEL_INDEX], kept[HIGH_LEVEL_INDEX])
        features, hidden = self.backbone(images), None
        for index, layer in enumerate(self.classifier):
            if index == self.classifier.hidden_layers:
                hidden = features
            features = layer(features)
        return features, hidden

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_input(images, self.size_divisor, f'torchvision_{self.kind}')
        logits, hidden = self._logits_and_hidden(images)
        outputs = {'semantic': upsample(logits, self.logit_stride)}
        if self.instance is not None:
            outputs.update(self.instance(hidden))
        return outputs


def initialise(network: nn.Module) -> None:
    """He-normal convolutions (fan in: depthwise ones too), zero biases, BatchNorm
    at identity except the last of each ResNet residual branch, at zero (torchvision's
    ``zero_init_residual``). A loaded checkpoint replaces all of it; without one (training
    from scratch, the tests' random networks) the activations neither fade to the
    classifier's bias nor grow with each of ResNet-101's 33 residual sums."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode='fan_in', nonlinearity='relu')
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    for module in network.modules():
        if isinstance(module, Bottleneck):
            nn.init.zeros_(module.bn3.weight)


@dataclass(frozen=True)
class TorchvisionArchitecture:
    """One of torchvision's segmentation builders and the network that loads its weights.

    Attributes:
        arch: torchvision's builder name (``deeplabv3_resnet50``).
        registry_name: This project's registry name (``torchvision_deeplabv3_resnet50``).
        kind, backbone: ``TorchvisionSegmentation`` arguments.
        classifier_key: State-dict tensor whose first dimension is the class count.
        size_divisor: Input height and width must be multiples of this.
    """

    arch: str
    kind: str
    backbone: str
    classifier_key: str
    size_divisor: int

    @property
    def registry_name(self) -> str:
        return f'torchvision_{self.arch}'


TORCHVISION_ARCHITECTURES: Dict[str, TorchvisionArchitecture] = {
    spec.arch: spec for spec in (
        TorchvisionArchitecture('fcn_resnet50', 'fcn', 'resnet50', 'classifier.4.weight', 8),
        TorchvisionArchitecture('fcn_resnet101', 'fcn', 'resnet101', 'classifier.4.weight', 8),
        TorchvisionArchitecture('deeplabv3_resnet50', 'deeplabv3', 'resnet50',
                                'classifier.4.weight', 8),
        TorchvisionArchitecture('deeplabv3_resnet101', 'deeplabv3', 'resnet101',
                                'classifier.4.weight', 8),
        TorchvisionArchitecture('deeplabv3_mobilenet_v3_large', 'deeplabv3',
                                'mobilenet_v3_large', 'classifier.4.weight', 16),
        TorchvisionArchitecture('lraspp_mobilenet_v3_large', 'lraspp', 'mobilenet_v3_large',
                                'classifier.low_classifier.weight', 16),
    )}

_DESCRIPTIONS = {
    'fcn': 'FCN', 'deeplabv3': 'DeepLabv3 (ASPP 12/24/36)', 'lraspp': 'LR-ASPP',
    'resnet50': 'ResNet-50 OS8', 'resnet101': 'ResNet-101 OS8',
    'mobilenet_v3_large': 'MobileNetV3-Large OS16',
}


def _register(spec: TorchvisionArchitecture) -> None:
    def build(num_classes: int = 21, panoptic: bool = False) -> TorchvisionSegmentation:
        return TorchvisionSegmentation(spec.kind, spec.backbone, num_classes, panoptic)

    description = (f'torchvision {_DESCRIPTIONS[spec.kind]}, {_DESCRIPTIONS[spec.backbone]} '
                   '(seg-perception import torchvision)')
    register_model(spec.registry_name, description, size_divisor=spec.size_divisor)(build)


for _spec in TORCHVISION_ARCHITECTURES.values():
    _register(_spec)
