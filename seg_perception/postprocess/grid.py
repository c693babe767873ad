"""The grouping grid: settings checks, limits and resampling of the panoptic post-processing.

Shared by the numpy reference (``reference``, whose module docstring is the written spec;
this module covers the grid of its step 2 and the nearest upsampling of step 6) and the graph
form (``fused``), so both build the same grid from the same settings. numpy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..manifest import PostprocessSettings

#: TensorRT's TopK layer needs a constant K below this.
MAX_TOP_K = 3840
#: Grouping distance of an invalid centre slot: finite (no inf * 0 in the matrix product),
#: far above any real squared distance on a grid.
INVALID_CENTER_DISTANCE = 1e30
#: Added to the grouping distance of a thing cell to a centre of another class in class-aware
#: grouping: above any squared distance on a grid (about 3.3e5 cells^2 at 2048x1024, stride
#: 4), far below ``INVALID_CENTER_DISTANCE``.
CLASS_MISMATCH_DISTANCE = 1e7


def validate_settings(settings: PostprocessSettings, num_classes: int,
                      thing_ids: Sequence[int], label_divisor: int, void_id: int) -> None:
    """Raise ``ValueError`` naming the bad setting when the post-processing cannot run."""
    if num_classes < 1:
        raise ValueError(f'num_classes must be at least 1, got {num_classes}')
    for thing_id in thing_ids:
        if not 0 <= int(thing_id) < num_classes:
            raise ValueError(f'thing id {thing_id} is not a class id (0..{num_classes - 1})')
    if 0 <= void_id < num_classes:
        raise ValueError(f'void_id {void_id} collides with a class id (0..{num_classes - 1})')
    if label_divisor < 1:
        raise ValueError(f'label_divisor must be positive, got {label_divisor}')
    if not 1 <= settings.top_k < min(label_divisor, MAX_TOP_K):
        raise ValueError(
            f'top_k {settings.top_k} must be in 1..{min(label_divisor, MAX_TOP_K) - 1} '
            f"(below label_divisor {label_divisor} and TensorRT's TopK limit {MAX_TOP_K})")
    if settings.nms_kernel < 1 or settings.nms_kernel % 2 == 0:
        raise ValueError(f'nms_kernel must be a positive odd number, got {settings.nms_kernel}')
    if settings.grouping_stride < 1:
        raise ValueError(
            f'grouping_stride must be a positive integer, got {settings.grouping_stride}')
    if settings.stuff_area < 0 or settings.min_instance_area < 0:
        raise ValueError(
            f'stuff_area ({settings.stuff_area}) and min_instance_area '
            f'({settings.min_instance_area}) must not be negative')
    if settings.min_center_votes < 0:
        raise ValueError(
            f'min_center_votes must not be negative, got {settings.min_center_votes}')
    if settings.center_vote_radius < 1:
        raise ValueError(
            f'center_vote_radius must be at least 1 pixel, got {settings.center_vote_radius}')
    if not isinstance(settings.class_aware_grouping, (bool, np.bool_)):
        raise ValueError(f'class_aware_grouping must be true or false, got '
                         f'{settings.class_aware_grouping!r}')


def check_grid_size(height: int, width: int, stride: int) -> None:
    """Raise ``ValueError`` unless ``height`` and ``width`` are multiples of ``stride``."""
    if height < 1 or width < 1 or height % stride or width % stride:
        raise ValueError(
            f'network size {width}x{height} must be a positive multiple of grouping_stride '
            f'{stride} in both directions')


def grid_nms_kernel(nms_kernel: int, stride: int) -> int:
    """Odd max-pool kernel on the grouping grid covering ``nms_kernel``'s radius (step 3)."""
    radius = nms_kernel // 2
    return 2 * (-(-radius // stride)) + 1


def vote_radius_in_cells(settings: PostprocessSettings) -> float:
    """``center_vote_radius`` in grouping-grid cells (network pixels / grouping stride)."""
    return float(settings.center_vote_radius) / float(settings.grouping_stride)


def num_center_slots(top_k: int, grid_height: int, grid_width: int) -> int:
    """The constant K of the top-k: ``min(top_k, grid cells)``."""
    return min(top_k, grid_height * grid_width)


def to_grid(array: np.ndarray, stride: int) -> np.ndarray:
    """Sample (..., H, W) at grid cells: ``array[..., s//2::s, s//2::s]`` -> (..., H/s, W/s)."""
    start = stride // 2
    return array[..., start::stride, start::stride]


def upsample_bilinear(array: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear upsampling of float (..., h, w) by an integer factor, half-pixel centres.

    The same as ONNX ``Resize`` (linear, ``half_pixel``) and torch's ``interpolate``
    (``align_corners=False``): output pixel ``o`` reads source ``(o + 0.5) / factor - 0.5``,
    clamped to the border. Returns float32 (..., h * factor, w * factor).
    """
    result = np.asarray(array, dtype=np.float32)
    for axis in (-1, -2):  # along rows first, as torch and ONNX Runtime do
        size = result.shape[axis]
        source = (np.arange(size * factor, dtype=np.float32) + np.float32(0.5)) \
            / np.float32(factor) - np.float32(0.5)
        source = np.maximum(source, np.float32(0))
        low = np.minimum(np.floor(source).astype(np.int64), size - 1)
        high = np.minimum(low + 1, size - 1)
        weight = (source - low).astype(np.float32)
        shape = [1] * result.ndim
        shape[axis] = weight.size
        weight = weight.reshape(shape)
        result = (np.take(result, low, axis=axis) * (np.float32(1) - weight)
                  + np.take(result, high, axis=axis) * weight).astype(np.float32)
    return result


def heads_to_grid(array: np.ndarray, head_stride: int, grid_stride: int) -> np.ndarray:
    """Centre heatmap or offsets (..., H/r, W/r) at head stride r -> the grid (..., H/s, W/s).

    r = s: unchanged; r < s: strided sampling ``[k//2::k]`` with k = s/r; r > s: bilinear
    upsampling by r/s (``upsample_bilinear``). One of r, s must divide the other.
    """
    if head_stride == grid_stride:
        return np.asarray(array)
    if head_stride < grid_stride:
        if grid_stride % head_stride:
            raise ValueError(f'grouping_stride {grid_stride} is not a multiple of the '
                             f'instance stride {head_stride}')
        return to_grid(array, grid_stride // head_stride)
    if head_stride % grid_stride:
        raise ValueError(f'instance stride {head_stride} is not a multiple of '
                         f'grouping_stride {grid_stride}')
    return upsample_bilinear(array, head_stride // grid_stride)


def from_grid(array: np.ndarray, stride: int) -> np.ndarray:
    """Nearest upsampling of (..., h, w) to (..., h*s, w*s): each cell repeated s x s."""
    return np.repeat(np.repeat(array, stride, axis=-2), stride, axis=-1)


def instance_stride_of(height: int, width: int, head_shape: Sequence[int]) -> int:
    """The integer r with ``head_shape[-2:] == (height / r, width / r)``, else ``ValueError``."""
    head_height, head_width = (int(v) for v in tuple(head_shape)[-2:])
    if head_height < 1 or head_width < 1 or height % head_height or width % head_width \
            or height // head_height != width // head_width:
        raise ValueError(
            f'instance outputs of size {head_width}x{head_height} are not the network size '
            f'{width}x{height} divided by one integer stride')
    return height // head_height
