"""ENet as davidtvs/PyTorch-ENet builds it, with max-unpooling that TensorRT can parse.

PyTorch-ENet (MIT licence) publishes ENet checkpoints trained on Cityscapes and CamVid. This
module is written for those weights: its ``state_dict`` has exactly the keys and shapes of
that repository's ``models/enet.py`` (``ENet(num_classes)``, PReLU encoder, ReLU decoder),
so their checkpoints load with ``strict=True``; the code is this project's own.

Where that network differs from this project's ``enet`` (which is trained here):

- initial block: 3x3 stride-2 conv (13 filters) beside a **3x3** stride-2 max pool
  (padding 1), one shared PReLU slope;
- every bottleneck's expansion (``ext_conv3``) has an activation before the residual add,
  the asymmetric 5x1 / 1x5 pair has BN + activation between its convs, and each PReLU has a
  single slope (``nn.PReLU()``);
- the upsampling bottlenecks unpool with the indices of the matching downsampling max pool
  (here the mask of ``unpool.max_pool_with_mask``, exactly equal: see ``unpool``);
- the last layer is a 3x3 stride-2 transposed conv (padding 1, output padding 1: the
  ``output_size`` PyTorch-ENet passes for the sizes accepted here), without bias.

Class channels: the checkpoints have one more output than real classes, an ``unlabeled``
channel (index 0 for Cityscapes, 11 for CamVid). ``class_channels`` selects the channels
that are train ids 0..C-1, in order; the others are dropped from the logits, so the
post-processing's argmax runs over the real classes only (see
``packages.importers.pytorch_enet``).

Sizes: the input passes two 2x2 max pools after the stride-2 initial block, so H and W must
be multiples of 8 (``size_divisor``; PyTorch-ENet's own sizes 1024x512 and 480x360 are).

Panoptic: ``panoptic=True`` adds this project's centre / offset head on the stage-4 decoder
features (64 channels, stride 4, as in ``enet``), trained here; its keys (``instance.*``)
are the only ones PyTorch-ENet's checkpoints do not have.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .heads import check_input, InstanceHead
from .registry import register_model
from .unpool import max_pool_with_mask, max_unpool

SIZE_DIVISOR = 8
#: Stages 2 and 3: (kind, dilation) of the bottlenecks after stage 2's downsampling.
MIDDLE_STAGE: Tuple[Tuple[str, int], ...] = (
    ('regular', 1), ('dilated', 2), ('asymmetric', 1), ('dilated', 4),
    ('regular', 1), ('dilated', 8), ('asymmetric', 1), ('dilated', 16))


def _activation(prelu: bool) -> nn.Module:
    # PyTorch-ENet's nn.PReLU() / nn.ReLU(): one PReLU slope per layer.
    return nn.PReLU() if prelu else nn.ReLU()


def _conv_bn(in_channels: int, out_channels: int, kernel, prelu: Optional[bool],
             stride: int = 1, padding=0, dilation: int = 1) -> nn.Sequential:
    """Conv (no bias) + BN [+ activation: PReLU when ``prelu``, ReLU when False, none when
    None]; the Sequential indices 0, 1, 2 are the checkpoint's key names."""
    layers: List[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding,
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels)]
    if prelu is not None:
        layers.append(_activation(prelu))
    return nn.Sequential(*layers)


class InitialBlock(nn.Module):
    """(N, 3, H, W) -> (N, 16, H/2, W/2): 13-filter 3x3 stride-2 conv || 3x3 stride-2 max
    pool of the image, BN, PReLU."""

    def __init__(self, prelu: bool = True) -> None:
        super().__init__()
        self.main_branch = nn.Conv2d(3, 13, 3, stride=2, padding=1, bias=False)
        self.ext_branch = nn.MaxPool2d(3, stride=2, padding=1)
        self.batch_norm = nn.BatchNorm2d(16)
        self.out_activation = _activation(prelu)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.main_branch(images), self.ext_branch(images)], dim=1)
        return self.out_activation(self.batch_norm(features))


class RegularBottleneck(nn.Module):
    """Regular, dilated or asymmetric (5x1 then 1x5) bottleneck; (N, C, h, w) -> same."""

    def __init__(self, channels: int, kind: str = 'regular', dilation: int = 1,
                 dropout: float = 0.1, prelu: bool = True) -> None:
        super().__init__()
        internal = channels // 4
        self.ext_conv1 = _conv_bn(channels, internal, 1, prelu)
        if kind == 'asymmetric':
            self.ext_conv2 = nn.Sequential(
                *_conv_bn(internal, internal, (5, 1), prelu, padding=(2, 0)),
                *_conv_bn(internal, internal, (1, 5), prelu, padding=(0, 2)))
        elif kind in ('regular', 'dilated'):
            self.ext_conv2 = _conv_bn(internal, internal, 3, prelu, padding=dilation,
                                      dilation=dilation)
        else:
            raise ValueError(f'bottleneck kind {kind!r}; valid: regular, dilated, asymmetric')
        self.ext_conv3 = _conv_bn(internal, channels, 1, prelu)
        self.ext_regul = nn.Dropout2d(dropout)
        self.out_activation = _activation(prelu)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        residual = self.ext_regul(self.ext_conv3(self.ext_conv2(self.ext_conv1(features))))
        return self.out_activation(features + residual)


class DownsamplingBottleneck(nn.Module):
    """(N, C_in, h, w) -> (N, C_out, h/2, w/2) and the unpooling mask (N, C_in, h, w).

    Shortcut: 2x2 max pool, zero channels appended up to C_out; residual: 2x2 stride-2
    projection, 3x3 conv, 1x1 expansion (each conv + BN + activation), spatial dropout.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float,
                 prelu: bool = True) -> None:
        super().__init__()
        internal = in_channels // 4
        self.in_channels = in_channels
        self.ext_conv1 = _conv_bn(in_channels, internal, 2, prelu, stride=2)
        self.ext_conv2 = _conv_bn(internal, internal, 3, prelu, padding=1)
        self.ext_conv3 = _conv_bn(internal, out_channels, 1, prelu)
        self.ext_regul = nn.Dropout2d(dropout)
        self.out_activation = _activation(prelu)

    def forward(self, features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        pooled, mask = max_pool_with_mask(features)
        residual = self.ext_regul(self.ext_conv3(self.ext_conv2(self.ext_conv1(features))))
        # residual + concat(pooled, zeros): the zero channels add nothing, so only the first
        # C_in residual channels get the shortcut (no zero tensor in the graph).
        count = self.in_channels
        summed = torch.cat([residual[:, :count] + pooled, residual[:, count:]], dim=1)
        return self.out_activation(summed), mask


class UpsamplingBottleneck(nn.Module):
    """(N, C_in, h, w) + mask (N, C_out, 2h, 2w) -> (N, C_out, 2h, 2w).

    Shortcut: 1x1 conv + BN, max-unpooled with the mask of the matching downsampling;
    residual: 1x1 projection, 2x2 stride-2 transposed conv, 1x1 expansion, spatial dropout.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1,
                 prelu: bool = False) -> None:
        super().__init__()
        internal = in_channels // 4
        self.main_conv1 = _conv_bn(in_channels, out_channels, 1, None)
        self.ext_conv1 = _conv_bn(in_channels, internal, 1, prelu)
        self.ext_tconv1 = nn.ConvTranspose2d(internal, internal, 2, stride=2, bias=False)
        self.ext_tconv1_bnorm = nn.BatchNorm2d(internal)
        self.ext_tconv1_activation = _activation(prelu)
        self.ext_conv2 = _conv_bn(internal, out_channels, 1, None)
        self.ext_regul = nn.Dropout2d(dropout)
        self.out_activation = _activation(prelu)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shortcut = max_unpool(self.main_conv1(features), mask)
        residual = self.ext_tconv1_activation(
            self.ext_tconv1_bnorm(self.ext_tconv1(self.ext_conv1(features))))
        residual = self.ext_regul(self.ext_conv2(residual))
        return self.out_activation(shortcut + residual)


class PyTorchENet(nn.Module):
    """PyTorch-ENet's ENet (state-dict compatible), unpooling by mask.

    Args:
        num_classes: Logit channels returned (the real classes C).
        output_channels: Channels of the last layer (the checkpoint's class count, e.g. 20
            with ``unlabeled``); default ``num_classes``.
        class_channels: For train ids 0..C-1, the output channel holding each; default
            0..C-1. Channels not listed (``unlabeled``) are dropped.
        panoptic: Add the centre / offset head on the stage-4 features.

    forward: float (N, 3, H, W), normalised as PyTorch-ENet trained (RGB / 255, no mean),
    H and W multiples of 8 -> ``semantic`` (N, C, H, W) [+ ``center`` (N, 1, H/4, W/4),
    ``offset`` (N, 2, H/4, W/4)].
    """

    size_divisor = SIZE_DIVISOR
    instance_stride = 4

    def __init__(self, num_classes: int = 19, output_channels: Optional[int] = None,
                 class_channels: Optional[Sequence[int]] = None,
                 panoptic: bool = False) -> None:
        super().__init__()
        output_channels = num_classes if output_channels is None else int(output_channels)
        channels = list(range(num_classes)) if class_channels is None \
            else [int(c) for c in class_channels]
        if len(channels) != num_classes or len(set(channels)) != len(channels) \
                or not all(0 <= c < output_channels for c in channels):
            raise ValueError(f'class_channels {channels} must be {num_classes} distinct '
                             f'channels of 0..{output_channels - 1}')
        self.num_classes = num_classes
        self.panoptic = panoptic
        self.class_channels = channels
        # A contiguous run of channels is a Slice in the graph, anything else a Gather.
        contiguous = channels == list(range(channels[0], channels[0] + len(channels)))
        self._channel_slice = (channels[0], channels[0] + len(channels)) if contiguous else None
        self._all_channels = contiguous and len(channels) == output_channels
        self.register_buffer('_channel_index', torch.tensor(channels), persistent=False)

        self.initial_block = InitialBlock(prelu=True)
        self.downsample1_0 = DownsamplingBottleneck(16, 64, dropout=0.01)
        # Module names are the checkpoint's: regular1_1.., regular2_1, dilated2_2, ...
        self.stage_1_names = [f'regular1_{index}' for index in range(1, 5)]
        for name in self.stage_1_names:
            self.add_module(name, RegularBottleneck(64, dropout=0.01))
        self.downsample2_0 = DownsamplingBottleneck(64, 128, dropout=0.1)
        self.stage_2_3_names = []
        for stage, first in ((2, 1), (3, 0)):
            for offset, (kind, dilation) in enumerate(MIDDLE_STAGE):
                name = f'{kind}{stage}_{first + offset}'
                self.add_module(name, RegularBottleneck(128, kind, dilation, dropout=0.1))
                self.stage_2_3_names.append(name)
        self.upsample4_0 = UpsamplingBottleneck(128, 64)
        self.regular4_1 = RegularBottleneck(64, prelu=False)
        self.regular4_2 = RegularBottleneck(64, prelu=False)
        self.upsample5_0 = UpsamplingBottleneck(64, 16)
        self.regular5_1 = RegularBottleneck(16, prelu=False)
        self.transposed_conv = nn.ConvTranspose2d(16, output_channels, 3, stride=2, padding=1,
                                                  output_padding=1, bias=False)
        self.instance = InstanceHead(64, stride=4, head_channels=16) if panoptic else None

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_input(images, self.size_divisor, type(self).__name__)
        features = self.initial_block(images)
        features, mask_1 = self.downsample1_0(features)
        for name in self.stage_1_names:
            features = getattr(self, name)(features)
        features, mask_2 = self.downsample2_0(features)
        for name in self.stage_2_3_names:
            features = getattr(self, name)(features)
        features = self.upsample4_0(features, mask_2)
        stage_4 = self.regular4_2(self.regular4_1(features))
        features = self.regular5_1(self.upsample5_0(stage_4, mask_1))
        logits = self.transposed_conv(features)
        if self._channel_slice is not None and not self._all_channels:
            logits = logits[:, self._channel_slice[0]:self._channel_slice[1]]
        elif self._channel_slice is None:
            logits = torch.index_select(logits, 1, self._channel_index)
        outputs = {'semantic': logits}
        if self.instance is not None:
            outputs.update(self.instance(stage_4))
        return outputs


@register_model('pytorch_enet', 'ENet as davidtvs/PyTorch-ENet (their checkpoints load), '
                'max-unpooling by mask, 0.35 M params', size_divisor=SIZE_DIVISOR)
def pytorch_enet(num_classes: int = 19, panoptic: bool = False,
                 output_channels: Optional[int] = None,
                 class_channels: Optional[Sequence[int]] = None) -> PyTorchENet:
    return PyTorchENet(num_classes, output_channels, class_channels, panoptic)
