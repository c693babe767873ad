"""Colour images of segmentation maps: semantic colours, overlay, instance and panoptic colours.

All functions are vectorised lookups / blends on whole arrays (no per-segment Python loop),
fast enough to run per frame at 1024x512 in the node.
"""

from __future__ import annotations

import numpy as np

from ..labels import LabelSet

#: Instance colour table size; ids are taken modulo this (ids stay below label_divisor).
INSTANCE_COLORS = 1000
_LEVELS = 10  # 10 levels per channel -> exactly 1000 distinct colours
_STEP = 25


def instance_palette() -> np.ndarray:
    """(1000, 3) uint8 distinct colours; row 0 (no instance) is black.

    Row k is a fixed permutation of the 10x10x10 grid of levels 30, 55, ... 255, so every
    two rows differ by at least 25 in some channel and neighbouring ids look different.
    """
    order = (np.arange(INSTANCE_COLORS, dtype=np.int64) * 379) % INSTANCE_COLORS
    levels = 30 + _STEP * np.stack(
        [order // (_LEVELS * _LEVELS), (order // _LEVELS) % _LEVELS, order % _LEVELS], axis=1)
    palette = levels.astype(np.uint8)
    palette[0] = 0
    return palette


def _packed(table_rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colours -> (N,) uint32, one RGBx word per colour."""
    packed = np.zeros((len(table_rgb), 4), dtype=np.uint8)
    packed[:, :3] = table_rgb
    return packed.view(np.uint32).ravel()


def _gather_rgb(packed: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Look ``ids`` (H, W) up in a packed table -> contiguous uint8 (H, W, 3).

    One 4-byte gather and OpenCV's channel drop are several times faster than numpy's
    gather of 3-byte rows at 1024x512.
    """
    import cv2
    words = packed[ids]
    return cv2.cvtColor(words.view(np.uint8).reshape(ids.shape + (4,)), cv2.COLOR_RGBA2RGB)


def semantic_color(semantic: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """uint8 (H, W) train ids -> uint8 (H, W, 3) RGB class colours (void black)."""
    ids = np.asarray(semantic)
    if ids.dtype != np.uint8:
        ids = np.clip(ids, 0, 255).astype(np.uint8)
    return _gather_rgb(_packed(label_set.palette), ids)


def overlay(image: np.ndarray, color: np.ndarray, alpha: float) -> np.ndarray:
    """Blend class colours onto the camera image.

    Args:
        image: uint8 (H, W, 3) RGB input (resized by the caller to ``color``'s size).
        color: uint8 (H, W, 3) RGB class colours.
        alpha: Weight of ``color`` in [0, 1]; 0 gives the input, 1 the colours.

    Returns:
        uint8 (H, W, 3) RGB ``(1 - alpha) * image + alpha * color``, rounded.
    """
    if image.shape != color.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'overlay needs two (H, W, 3) images of one size, got {image.shape} '
                         f'and {color.shape}')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'overlay alpha must be in [0, 1], got {alpha}')
    import cv2
    return cv2.addWeighted(np.ascontiguousarray(image), 1.0 - alpha,
                           np.ascontiguousarray(color), alpha, 0.0)


def instance_color(instance: np.ndarray) -> np.ndarray:
    """int (H, W) instance ids -> uint8 (H, W, 3): black background, one colour per id."""
    ids = np.asarray(instance, dtype=np.int64)
    return instance_palette()[ids % INSTANCE_COLORS]


class PanopticColorizer:
    """Colours panoptic maps with one lookup table built once per label set and divisor.

    Stuff (instance 0) gets its class colour; each instance gets the mean of its class
    colour and its instance colour, so a person stays reddish while two persons differ.
    Void (``void_id * label_divisor``) is black. The table has one RGB row per panoptic id
    ``0 .. 256 * label_divisor - 1`` (768 kB for divisor 1000), so colouring a map is a
    single gather instead of per-pixel class / instance arithmetic.
    """

    def __init__(self, label_set: LabelSet, label_divisor: int) -> None:
        if label_divisor < 1:
            raise ValueError(f'label_divisor must be positive, got {label_divisor}')
        ids = np.arange(256 * label_divisor, dtype=np.int64)
        classes = (ids // label_divisor).astype(np.uint8)
        instance = ids % label_divisor
        base = label_set.palette[classes]
        mixed = ((base.astype(np.uint16) + instance_palette()[instance % INSTANCE_COLORS])
                 // 2).astype(np.uint8)
        self.table = np.where((instance > 0)[:, None], mixed, base)
        self._packed = _packed(self.table)
        self.label_divisor = int(label_divisor)

    def __call__(self, panoptic: np.ndarray) -> np.ndarray:
        """int (H, W) panoptic ids -> uint8 (H, W, 3) RGB (ids outside the table clipped)."""
        ids = np.asarray(panoptic)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.table)):
            ids = np.clip(ids, 0, len(self.table) - 1)
        return _gather_rgb(self._packed, ids)


def panoptic_color(panoptic: np.ndarray, label_set: LabelSet, label_divisor: int) -> np.ndarray:
    """int32 (H, W) panoptic ids -> uint8 (H, W, 3) RGB (see ``PanopticColorizer``).

    Builds the lookup table on every call; keep a ``PanopticColorizer`` for a stream.
    """
    return PanopticColorizer(label_set, label_divisor)(panoptic)
