"""2x2 max pooling "with indices" and max-unpooling, in ops TensorRT's ONNX parser takes.

ENet (Paszke et al. 2016) restores resolution in its upsampling bottlenecks by max-unpooling
with the indices of the matching 2x2 max pool. onnx-tensorrt (8.5 and 10.x) has no
``MaxUnpool`` importer and imports ``MaxPool`` without its ``Indices`` output, so here the
indices travel as a boolean **mask** at the pooled tensor's input resolution::

    x                                     float (N, C, H, W), H and W even; h = H/2, w = W/2
    pooled = MaxPool2x2(x)                (N, C, h, w)            MaxPool, no indices
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]                 strided Slice: the four
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]                 window positions (N, C, h, w)
    first  = (a == pooled)
    second = (b == pooled) and not first
    third  = (c == pooled) and not (first or second)
    fourth = not (first or second or third)
    mask = interleave(first, second, third, fourth)               bool (N, C, H, W)
    unpool(values, mask) = Where(mask, nearest2x(values), 0)      (N, C, h, w) -> (N, C, H, W)

Exported ops: MaxPool (one output), Slice, Equal, Not, And, Or, Unsqueeze, Concat, Reshape,
Resize (nearest, constant scale 2), Where; all in onnx-tensorrt's support matrix for 8.5 and
10.x (``export.tensorrt_check``).

**Equality with ``nn.MaxPool2d(2, 2, return_indices=True)`` + ``nn.MaxUnpool2d(2)``**, for
inputs without NaN (``test/models/test_unpool.py`` checks it eagerly and through ONNX
Runtime, on random inputs and on inputs full of ties):

1. With kernel 2 and stride 2 the windows tile the plane without overlap, so every index
   torch returns points into its own window and ``MaxUnpool2d`` writes each value to one
   position of that window; nothing else is written, the rest of the output is 0.
2. torch's max-pool kernels (CPU and CUDA alike) scan a window row by row, left to right,
   and replace the running maximum only when ``value > maximum`` (or the value is NaN). A
   later value *equal* to the maximum does not replace it, so the index kept is the
   **first position in row-major order** (a, b, c, d) that holds the window's maximum.
3. ``pooled`` is one of a, b, c, d exactly (a maximum selects, it never rounds), so at least
   one comparison is true; first/second/third/fourth is the one-hot of the first true one in
   the order a, b, c, d, i.e. exactly one of them is true, at the position of step 2.
4. ``Where`` puts the value there and +0 elsewhere, as ``MaxUnpool2d`` does.

**Ties** therefore resolve as in torch: a window of equal values (zeros after a ReLU,
saturated activations) unpools to its top-left position; ``-0.0`` and ``0.0`` are equal and
tie the same way. Because ``fourth`` is the complement of the other three, the mask has
exactly one true position per window whatever the comparisons give, also if a reduced
precision build made ``pooled`` differ from all four (it then falls back to bottom-right).
NaN: torch keeps the last NaN of a window; this formulation does not follow it (NaN is no
data a working network produces).
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from .layers import static_shape


def _interleave(top_left: torch.Tensor, top_right: torch.Tensor, bottom_left: torch.Tensor,
                bottom_right: torch.Tensor) -> torch.Tensor:
    """Four (N, C, h, w) maps -> (N, C, 2h, 2w) with map k at window position k (row-major):
    ``out[..., 2i, 2j] = top_left[..., i, j]``, ``out[..., 2i, 2j + 1] = top_right[..., i, j]``
    and so on. Static-shape Unsqueeze / Concat / Reshape in ONNX."""
    batch, channels, height, width = static_shape(top_left)
    top = torch.stack([top_left, top_right], dim=4).reshape(batch, channels, height, 2 * width)
    bottom = torch.stack([bottom_left, bottom_right], dim=4).reshape(
        batch, channels, height, 2 * width)
    return torch.stack([top, bottom], dim=3).reshape(batch, channels, 2 * height, 2 * width)


def max_pool_with_mask(features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """2x2 stride-2 max pooling that also returns where each maximum was.

    Args:
        features: float (N, C, H, W), H and W even.

    Returns:
        pooled: (N, C, H/2, W/2), equal to ``F.max_pool2d(features, 2)``.
        mask: bool (N, C, H, W), true at exactly one position per 2x2 window: the one whose
            flat index ``MaxPool2d(2, 2, return_indices=True)`` returns (the first maximum
            in row-major order; see the module docstring).

    Raises:
        ValueError: H or W is odd (``MaxPool2d`` would drop the last row or column).
    """
    height, width = static_shape(features)[-2:]
    if height % 2 or width % 2:
        raise ValueError(f'2x2 max pooling with unpooling needs an even size, got {width}x'
                         f'{height} (WxH)')
    pooled = F.max_pool2d(features, 2, stride=2)
    first = features[:, :, 0::2, 0::2] == pooled
    second = (features[:, :, 0::2, 1::2] == pooled) & ~first
    taken = first | second
    third = (features[:, :, 1::2, 0::2] == pooled) & ~taken
    fourth = ~(taken | third)
    return pooled, _interleave(first, second, third, fourth)


def max_unpool(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``MaxUnpool2d(2)`` driven by the mask of ``max_pool_with_mask``.

    Args:
        values: float (N, C, h, w) to place (need not be the pooled values: ENet unpools
            other features with the indices of an earlier pool).
        mask: bool (N, C, 2h, 2w) from ``max_pool_with_mask``.

    Returns:
        float (N, C, 2h, 2w): each value at its window's masked position, 0 elsewhere.
    """
    expected = static_shape(values)[:2] + tuple(2 * s for s in static_shape(values)[2:])
    if static_shape(mask) != expected:
        raise ValueError(f'unpooling mask {tuple(mask.shape)} must be {expected}: twice the '
                         f'size of the values {tuple(values.shape)}')
    upsampled = F.interpolate(values, scale_factor=2.0, mode='nearest')
    return torch.where(mask, upsampled, torch.zeros((), dtype=values.dtype,
                                                    device=values.device))
