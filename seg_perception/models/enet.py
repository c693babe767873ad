"""ENet (Paszke et al. 2016, arXiv:1606.02147) with TensorRT-friendly upsampling.

Structure as in the paper (table 1) and its reference Torch code:

- initial block: 3x3 stride-2 conv (13 filters) concatenated with a 2x2 max pool of the
  image -> 16 channels, BN, PReLU;
- stage 1: downsampling bottleneck to 64 channels + 4 regular bottlenecks (dropout 0.01);
- stages 2 and 3: (stage 2 only: downsampling to 128) regular, dilated 2, asymmetric 5,
  dilated 4, regular, dilated 8, asymmetric 5, dilated 16 (dropout 0.1);
- stage 4: upsampling bottleneck to 64 + 2 regular; stage 5: upsampling to 16 + 1 regular;
- full conv: 2x2 stride-2 transposed conv to the classes.

Bottlenecks: 1x1 projection to in/4 channels (2x2 stride-2 conv when downsampling), the main
conv (3x3, dilated 3x3, or 5x1 followed by 1x5), 1x1 expansion, spatial dropout, residual
add, activation. PReLU in the encoder and ReLU in the decoder, as in the reference code.

**Max-unpooling replaced.** The paper's upsampling bottleneck restores resolution in its
shortcut with max-unpooling driven by the indices of the matching max pool. TensorRT
(onnx-tensorrt, 8.5 and 10.x) supports neither ``MaxUnpool`` nor ``MaxPool``'s indices
output, so here the shortcut is 1x1 conv + BN followed by a **bilinear 2x ``Resize``**
(constant scales, ``align_corners=False``), and the max pools of the downsampling shortcuts
return no indices. Bilinear resize is the closest index-free equivalent: it spreads each
value over the 2x2 block the unpooling would have written to, is differentiable, costs no
parameters, and every TensorRT version runs it. The residual branch's transposed conv uses
a 2x2 kernel at stride 2 (exact 2x, no output padding) for the same reason (it and the full
conv can be exported as a 1x1 conv to 4C + ``DepthToSpace``,
``layers.DepthToSpaceConvTranspose``, which ONNX Runtime 1.32 runs slower). Weights trained
with max-unpooling do not transfer: the model must be (re)trained.

**Packed logits in the export.** The exported graph calls ``forward(x, packed_semantic=True)``:
the full conv becomes one MatMul whose (B, H/2 * W/2 * 4, C) result the post-processing
reduces over its contiguous class axis (``layers.packed_transposed_conv``,
``postprocess.packed``), so the (B, C, H, W) logits are never written. Training, ``heads()``
and flip-test graphs use the plain form; both give the same classes.

The channel zero-padding of the downsampling shortcut is a ``Concat`` with zeros made by a
broadcast ``Mul`` of one input channel with a (1, extra, 1, 1) zero constant: no ``Pad`` on
the channel axis (not every TensorRT version pads that axis) and no folded activation-sized
constant bloating the ONNX file.

Panoptic: the centre / offset head (``heads.InstanceHead``) reads the stage-4 decoder
features (64 channels, stride 4), the resolution of the post-processing's grouping grid, so
its outputs need no resampling in the graph; the semantic logits come from stage 5 and the
paper's full conv.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from .heads import check_input, InstanceHead
from .layers import packed_transposed_conv, upsample
from .registry import register_model

SIZE_DIVISOR = 8
#: Decoder layers of stage 4 (upsampling to stride 4 + two regular bottlenecks).
STAGE_4_LAYERS = 3


def _activation(channels: int, use_prelu: bool) -> nn.Module:
    return nn.PReLU(channels) if use_prelu else nn.ReLU(inplace=True)


class InitialBlock(nn.Module):
    """(N, 3, H, W) -> (N, 16, H/2, W/2): 13-filter strided conv || max pool, BN, PReLU."""

    def __init__(self, out_channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, out_channels - 3, 3, stride=2, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.norm = nn.BatchNorm2d(out_channels)
        self.activation = nn.PReLU(out_channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(torch.cat([self.conv(images), self.pool(images)], 1)))


class Bottleneck(nn.Module):
    """Regular, dilated, asymmetric or downsampling ENet bottleneck.

    Args:
        in_channels, out_channels: Widths; ``out_channels`` differs only when downsampling.
        kind: ``regular`` (3x3), ``dilated`` (3x3 at ``dilation``), ``asymmetric``
            (5x1 then 1x5) or ``downsampling`` (2x2 stride-2 projection, 3x3 main conv,
            max-pooled and zero-padded shortcut).
        dilation: For ``dilated``.
        dropout: Spatial dropout probability.
        use_prelu: PReLU (encoder) or ReLU (decoder).
    """

    KINDS = ('regular', 'dilated', 'asymmetric', 'downsampling')

    def __init__(self, in_channels: int, out_channels: Optional[int] = None,
                 kind: str = 'regular', dilation: int = 1, dropout: float = 0.1,
                 use_prelu: bool = True) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f'ENet bottleneck kind {kind!r}; valid: {", ".join(self.KINDS)}')
        out_channels = out_channels or in_channels
        internal = in_channels // 4
        self.downsampling = kind == 'downsampling'
        self.extra_channels = out_channels - in_channels
        if self.downsampling:
            project = nn.Conv2d(in_channels, internal, 2, stride=2, bias=False)
            self.shortcut_pool = nn.MaxPool2d(2, stride=2)
        else:
            project = nn.Conv2d(in_channels, internal, 1, bias=False)
        if kind == 'asymmetric':
            main = nn.Sequential(
                nn.Conv2d(internal, internal, (5, 1), padding=(2, 0), bias=False),
                nn.Conv2d(internal, internal, (1, 5), padding=(0, 2), bias=False))
        else:
            main = nn.Conv2d(internal, internal, 3, padding=dilation, dilation=dilation,
                             bias=False)
        self.residual = nn.Sequential(
            project, nn.BatchNorm2d(internal), _activation(internal, use_prelu),
            main, nn.BatchNorm2d(internal), _activation(internal, use_prelu),
            nn.Conv2d(internal, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout))
        self.activation = _activation(out_channels, use_prelu)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shortcut = features
        if self.downsampling:
            shortcut = self.shortcut_pool(features)
            if self.extra_channels > 0:
                # Zeros broadcast from the data, not a full-size constant: the exporter would
                # fold that into the ONNX file (25 MB at 1024x512).
                zeros = shortcut[:, :1] * torch.zeros(1, self.extra_channels, 1, 1,
                                                      dtype=shortcut.dtype, device=shortcut.device)
                shortcut = torch.cat([shortcut, zeros], dim=1)
        return self.activation(self.residual(features) + shortcut)


class UpsamplingBottleneck(nn.Module):
    """ENet upsampling bottleneck, max-unpooling replaced by 1x1 conv + BN + bilinear 2x.

    (N, in_channels, h, w) -> (N, out_channels, 2h, 2w).
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1) -> None:
        super().__init__()
        internal = in_channels // 4
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                      nn.BatchNorm2d(out_channels))
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, internal, 1, bias=False), nn.BatchNorm2d(internal),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(internal, internal, 2, stride=2, bias=False),
            nn.BatchNorm2d(internal), nn.ReLU(inplace=True),
            nn.Conv2d(internal, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout))
        self.activation = nn.ReLU(inplace=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shortcut = upsample(self.shortcut(features), 2)
        return self.activation(self.residual(features) + shortcut)


def _stage_2_or_3(channels: int, dropout: float) -> list:
    return [
        Bottleneck(channels, dropout=dropout),
        Bottleneck(channels, kind='dilated', dilation=2, dropout=dropout),
        Bottleneck(channels, kind='asymmetric', dropout=dropout),
        Bottleneck(channels, kind='dilated', dilation=4, dropout=dropout),
        Bottleneck(channels, dropout=dropout),
        Bottleneck(channels, kind='dilated', dilation=8, dropout=dropout),
        Bottleneck(channels, kind='asymmetric', dropout=dropout),
        Bottleneck(channels, kind='dilated', dilation=16, dropout=dropout),
    ]


class ENet(nn.Module):
    """ENet.

    forward: float (N, 3, H, W), H and W multiples of 8 -> dict as in ``registry``:
    ``semantic`` (N, C, H, W) [+ ``center`` (N, 1, H/4, W/4), ``offset`` (N, 2, H/4, W/4)].
    """

    size_divisor = SIZE_DIVISOR

    def __init__(self, num_classes: int = 19, panoptic: bool = False) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.panoptic = panoptic
        self.encoder = nn.Sequential(
            InitialBlock(16),
            Bottleneck(16, 64, kind='downsampling', dropout=0.01),
            *[Bottleneck(64, dropout=0.01) for _ in range(4)],
            Bottleneck(64, 128, kind='downsampling', dropout=0.1),
            *_stage_2_or_3(128, 0.1),
            *_stage_2_or_3(128, 0.1),
        )
        self.decoder = nn.Sequential(
            UpsamplingBottleneck(128, 64),
            Bottleneck(64, use_prelu=False),
            Bottleneck(64, use_prelu=False),
            UpsamplingBottleneck(64, 16),
            Bottleneck(16, use_prelu=False),
        )
        self.full_conv = nn.ConvTranspose2d(16, num_classes, 2, stride=2)
        self.instance = InstanceHead(64, stride=4, head_channels=16) if panoptic else None
        self.instance_stride = 4

    #: ``forward(images, packed_semantic=True)`` is available (see ``forward``); this is the
    #: layer it packs (``packages.onnx_weights`` reads its weights back from the MatMul).
    packed_semantic_layer = 'full_conv'

    def forward(self, images: torch.Tensor,
                packed_semantic: bool = False) -> Dict[str, torch.Tensor]:
        """The registry contract; with ``packed_semantic`` the logits come as
        ``semantic_packed`` (B, H/2 * W/2 * 4, C) from ``layers.packed_transposed_conv``
        instead of ``semantic`` (B, C, H, W) (the export graph's faster form)."""
        check_input(images, self.size_divisor, type(self).__name__)
        stage_4 = self.decoder[:STAGE_4_LAYERS](self.encoder(images))
        features = self.decoder[STAGE_4_LAYERS:](stage_4)
        if packed_semantic:
            outputs = {'semantic_packed': packed_transposed_conv(self.full_conv, features)}
        else:
            outputs = {'semantic': self.full_conv(features)}
        if self.instance is not None:
            outputs.update(self.instance(stage_4))
        return outputs


@register_model('enet', 'ENet (paper structure, unpooling -> bilinear resize), 0.36 M params',
                size_divisor=SIZE_DIVISOR)
def enet(num_classes: int = 19, panoptic: bool = False) -> ENet:
    return ENet(num_classes, panoptic)
