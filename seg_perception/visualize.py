"""Colour images of segmentation maps: semantic colours, overlay, instance and panoptic colours.

All functions are vectorised lookups / blends on whole arrays (no per-segment Python loop),
fast enough to run per frame at 1024x512 in the node.
"""

from __future__ import annotations

import numpy as np

from .labels import LabelSet

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


def semantic_color(semantic: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """uint8 (H, W) train ids -> uint8 (H, W, 3) RGB class colours (void black)."""
    return label_set.colorize(semantic)


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


def panoptic_color(panoptic: np.ndarray, label_set: LabelSet, label_divisor: int) -> np.ndarray:
    """int32 (H, W) panoptic ids -> uint8 (H, W, 3) RGB.

    Stuff (instance 0) gets its class colour; each instance gets the mean of its class
    colour and its instance colour, so a person stays reddish while two persons differ.
    Void (``void_id * label_divisor``) is black.
    """
    ids = np.asarray(panoptic, dtype=np.int64)
    classes = np.clip(ids // label_divisor, 0, 255).astype(np.uint8)
    instance = ids % label_divisor
    base = label_set.palette[classes]
    mixed = ((base.astype(np.uint16) + instance_palette()[instance % INSTANCE_COLORS]) // 2)
    return np.where((instance > 0)[..., None], mixed.astype(np.uint8), base)
