"""Where training runs: the device and whether the network runs under bfloat16 autocast."""

from __future__ import annotations

from .config import TrainingError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` where torch sees a GPU, else ``cpu``; refuses ``cuda`` without one."""
    import torch
    if device not in ('auto', 'cpu', 'cuda'):
        raise TrainingError(f'device {device!r} is not one of auto, cpu, cuda')
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise TrainingError('device cuda was asked for but torch sees no CUDA GPU')
    return device


def use_bfloat16_autocast(mixed_precision: str, device: str) -> bool:
    """Whether training runs the network under bfloat16 autocast (see ``TrainConfig``)."""
    import torch
    if mixed_precision not in ('auto', 'bf16', 'off'):
        raise TrainingError(f'mixed_precision {mixed_precision!r} is not one of auto, bf16, off')
    if mixed_precision != 'auto':
        return mixed_precision == 'bf16'
    if device == 'cuda':
        return True
    # Without native bfloat16 units the CPU emulates it and training gets slower, not faster.
    return bool(torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                and (torch.cpu._is_amx_tile_supported()
                     or torch.cpu._is_avx512_bf16_supported()))
