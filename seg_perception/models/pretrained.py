"""torchvision's ImageNet classification checkpoints as starting weights of ``backbones``.

torchvision publishes ResNet-18 / ResNet-50 / MobileNetV3-Large trained on ImageNet as plain
state dicts (``resnet18-f37072fd.pth``, ``resnet50-0676ba61.pth``, ``resnet50-11ad3fa6.pth``,
``mobilenet_v3_large-8738ca79.pth``, ``mobilenet_v3_large-5c1a4163.pth``). The encoders here
compute the same functions with other module names; ``load_torchvision_backbone`` renames
the keys, checks that every tensor of the encoder gets a value of its shape, and loads them.

Key mapping (torchvision -> ``backbones``)::

    ResNet     conv1.weight, bn1.*                    -> stem.0.0.weight, stem.0.1.*
               layerL.B.convN.weight, layerL.B.bnN.*  -> layerL.B.convN.0.weight, .convN.1.*
               layerL.B.downsample.{0,1}.*            -> (unchanged)
               fc.*                                   -> dropped: the ImageNet classifier
    MobileNet  features.0.*                           -> stem.*
               features.I.block.K.* (I = 1..15)       -> block I-1 of low_level (I <= 3) or
                                                         high_level (I - 4); the SE's fc1 /
                                                         fc2 -> reduce / expand
               features.16.*                          -> high_level.12.* (1x1 conv to 960)
               classifier.*                           -> dropped: the ImageNet classifier

torchvision's MobileNetV3 BatchNorms use eps 0.001, ours the PyTorch default 1e-5: each
``running_var`` is raised by the difference, so that ``var + eps`` and hence the
normalisation (eval mode) are the same. A missing ``num_batches_tracked`` (files saved by
torch < 0.4.1) is tolerated: the BatchNorms here use a fixed momentum, which ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from .backbones import _MOBILENET_LOW_LEVEL_BLOCK, MOBILENETV3_LARGE, MobileNetV3Large, ResNet

#: Our backbone name -> torchvision's builder name.
TORCHVISION_ARCHS = {'resnet18': 'resnet18', 'resnet50': 'resnet50',
                     'mobilenetv3': 'mobilenet_v3_large'}
#: BatchNorm eps of torchvision's builders.
TORCHVISION_BN_EPS = {'resnet18': 1e-5, 'resnet50': 1e-5, 'mobilenet_v3_large': 1e-3}
#: Prefix of the ImageNet classifier's keys, dropped knowingly.
CLASSIFIER_PREFIX = {'resnet18': 'fc.', 'resnet50': 'fc.', 'mobilenet_v3_large': 'classifier.'}
CLASSIFIER_REASON = 'ImageNet classifier head, not part of the encoder'
#: Tensors the file may lack (BatchNorm counters, unused with a fixed momentum).
OPTIONAL_SUFFIX = '.num_batches_tracked'
#: Problems named in an error.
PROBLEMS_SHOWN = 3

_RESNET_RULES = (
    (re.compile(r'conv1\.weight'), r'stem.0.0.weight'),
    (re.compile(r'bn1\.(\w+)'), r'stem.0.1.\1'),
    (re.compile(r'(layer\d+\.\d+)\.conv(\d+)\.weight'), r'\1.conv\2.0.weight'),
    (re.compile(r'(layer\d+\.\d+)\.bn(\d+)\.(\w+)'), r'\1.conv\2.1.\3'),
    (re.compile(r'(layer\d+\.\d+\.downsample\.[01]\.\w+)'), r'\1'),
)
_SQUEEZE_EXCITE = {'fc1': 'reduce', 'fc2': 'expand'}


class PretrainedWeightsError(ValueError):
    """A checkpoint does not fit the encoder (another architecture, wrong or broken file)."""


@dataclass(frozen=True)
class PretrainedReport:
    """What ``load_torchvision_backbone`` did.

    Attributes:
        source: The file (or a description of the state dict).
        arch: torchvision's name of the architecture (``resnet18``...).
        loaded: Tensors of the encoder given the file's values.
        total: Tensors (parameters and buffers) of the encoder.
        not_loaded: Encoder keys the file gave nothing (only ``num_batches_tracked``).
        dropped: (checkpoint key, reason) of the file's tensors left out.
        variance_shift: Added to every BatchNorm ``running_var`` (torchvision's eps minus
            ours; 0 when they agree).
    """

    source: str
    arch: str
    loaded: int
    total: int
    not_loaded: Tuple[str, ...]
    dropped: Tuple[Tuple[str, str], ...]
    variance_shift: float

    def lines(self) -> List[str]:
        """The report as log lines."""
        lines = [f"backbone weights: loaded {self.loaded} of the encoder's {self.total} "
                 f'tensors from {self.source} (torchvision {self.arch})']
        if self.not_loaded:
            lines.append(f'  encoder tensors not loaded: {len(self.not_loaded)} BatchNorm '
                         f'counters absent from the file ({_first(self.not_loaded)}), kept '
                         'at 0 (unused with a fixed momentum)')
        else:
            lines.append('  encoder tensors not loaded: none')
        reasons: Dict[str, List[str]] = {}
        for key, reason in self.dropped:
            reasons.setdefault(reason, []).append(key)
        for reason, keys in reasons.items():
            lines.append(f'  checkpoint keys dropped: {", ".join(keys)} ({reason})')
        if self.variance_shift:
            lines.append(f"  BatchNorm running_var + {self.variance_shift:.6g}: torchvision's "
                         f'eps {TORCHVISION_BN_EPS[self.arch]:g} kept (same normalisation)')
        return lines


def torchvision_arch(backbone: nn.Module) -> str:
    """torchvision's name of ``backbone``'s architecture.

    Raises:
        PretrainedWeightsError: Not a ``backbones`` encoder with a torchvision counterpart.
    """
    if isinstance(backbone, ResNet) and f'resnet{backbone.depth}' in TORCHVISION_ARCHS:
        return TORCHVISION_ARCHS[f'resnet{backbone.depth}']
    if isinstance(backbone, MobileNetV3Large):
        return TORCHVISION_ARCHS['mobilenetv3']
    raise PretrainedWeightsError(
        f'{type(backbone).__name__} is not an encoder with torchvision weights; valid: '
        f'{", ".join(TORCHVISION_ARCHS)}')


def torchvision_key(arch: str, key: str) -> Optional[str]:
    """Our encoder's key for torchvision's ``key`` of ``arch``; None for no such key."""
    if arch.startswith('resnet'):
        for pattern, replacement in _RESNET_RULES:
            if pattern.fullmatch(key):
                return pattern.sub(replacement, key)
        return None
    match = re.fullmatch(r'features\.(\d+)\.(.+)', key)
    if arch != 'mobilenet_v3_large' or not match:
        return None
    index, rest = int(match[1]), match[2]
    if index == 0:
        return f'stem.{rest}'
    block = index - 1
    if block > len(MOBILENETV3_LARGE):
        return None
    high = block - _MOBILENET_LOW_LEVEL_BLOCK - 1
    where = f'low_level.{block}' if high < 0 else f'high_level.{high}'
    squeeze = re.fullmatch(r'(block\.\d+)\.(fc1|fc2)\.(\w+)', rest)
    if squeeze:
        rest = f'{squeeze[1]}.{_SQUEEZE_EXCITE[squeeze[2]]}.{squeeze[3]}'
    return f'{where}.{rest}'


def guess_torchvision_arch(keys) -> str:
    """A few words on which network a state dict's ``keys`` come from (for errors)."""
    keys = list(keys)
    if any(key.startswith('encoder.') for key in keys):
        return 'a seg-perception network (encoder.*), not a torchvision classifier'
    if any(key.startswith('features.') for key in keys):
        return 'a torchvision MobileNet (features.*)'
    blocks = {int(m[1]) for m in (re.match(r'layer3\.(\d+)\.', key) for key in keys) if m}
    if blocks:
        bottleneck = any('.conv3.' in key for key in keys)
        names = {(False, 2): 'resnet18', (False, 6): 'resnet34', (True, 6): 'resnet50',
                 (True, 23): 'resnet101', (True, 36): 'resnet152'}
        name = names.get((bottleneck, len(blocks)))
        return f"torchvision's {name}" if name else f'a ResNet with {len(blocks)} layer3 blocks'
    return 'no torchvision classifier'


def load_torchvision_backbone(backbone: nn.Module, state: Mapping[str, torch.Tensor],
                              source: str) -> PretrainedReport:
    """Load torchvision's ImageNet weights ``state`` into ``backbone`` (in place).

    Args:
        backbone: A ``backbones`` encoder (``ResNet`` 18 / 50 or ``MobileNetV3Large``), any
            output stride (dilation changes no tensor).
        state: torchvision's state dict of the same architecture.
        source: Names the weights in the report and errors (the file path).

    Returns:
        What was loaded, left out and adjusted.

    Raises:
        PretrainedWeightsError: A tensor of the file has no place or another shape in the
            encoder, or an encoder tensor gets no value; nothing is loaded then.
    """
    arch = torchvision_arch(backbone)
    own = backbone.state_dict()
    converted: Dict[str, torch.Tensor] = {}
    dropped: List[Tuple[str, str]] = []
    wrong_shape: List[str] = []
    no_place: List[str] = []
    for key, value in state.items():
        if key.startswith(CLASSIFIER_PREFIX[arch]):
            dropped.append((key, CLASSIFIER_REASON))
            continue
        target = torchvision_key(arch, key)
        if target is None or target not in own or target in converted:
            no_place.append(f'{key} has no place in it')
        elif tuple(value.shape) != tuple(own[target].shape):
            wrong_shape.append(f"{key} is {tuple(value.shape)}, the encoder's {target} "
                               f'{tuple(own[target].shape)}')
        else:
            converted[target] = value
    missing = [key for key in own if key not in converted]
    required = [key for key in missing if not key.endswith(OPTIONAL_SUFFIX)]
    problems = wrong_shape + no_place + [f"the encoder's {key} is not in the file"
                                         for key in required]
    if problems:
        more = len(problems) - PROBLEMS_SHOWN
        raise PretrainedWeightsError(
            f'{source} does not fit the {arch} encoder (it looks like '
            f'{guess_torchvision_arch(state)}): {"; ".join(problems[:PROBLEMS_SHOWN])}'
            + (f' (and {more} more)' if more > 0 else ''))
    shift = _adjust_batch_norm_eps(backbone, converted, TORCHVISION_BN_EPS[arch])
    with torch.no_grad():
        for key, value in converted.items():
            own[key].copy_(value)
    return PretrainedReport(source=source, arch=arch, loaded=len(converted), total=len(own),
                            not_loaded=tuple(missing), dropped=tuple(dropped),
                            variance_shift=shift)


def _adjust_batch_norm_eps(backbone: nn.Module, converted: Dict[str, torch.Tensor],
                           source_eps: float) -> float:
    """Raise ``converted``'s running variances by ``source_eps`` minus each BatchNorm's eps."""
    shift = 0.0
    for name, module in backbone.named_modules():
        key = f'{name}.running_var'
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and key in converted:
            difference = source_eps - module.eps
            if difference:
                converted[key] = converted[key].to(module.running_var.dtype) + difference
                shift = max(shift, difference, key=abs)
    return shift


def _first(keys: Tuple[str, ...], count: int = 2) -> str:
    return ', '.join(keys[:count]) + (', ...' if len(keys) > count else '')
