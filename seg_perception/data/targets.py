"""Panoptic-DeepLab training targets from a semantic and an instance map (numpy only).

Conventions (shared with the models' heads and the post-processing):

* ``center`` is a heatmap with a 2-D Gaussian (peak 1.0) at the rounded centre of mass of
  every thing instance; overlapping Gaussians take the maximum.
* ``offset`` holds (dy, dx) per pixel such that ``centre = pixel + offset``, where the centre
  is the instance's (unrounded) centre of mass in pixel coordinates (row, column).
* Crowd (a thing pixel without instance, ``instance == 0``) gets no centre; its pixels are
  ignored by the centre loss as the crowd may hold unmarked centres, as in detectron2.

Compute the targets after augmentation, on the final crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import LabelSet


@dataclass
class PanopticTargets:
    """Targets and per-pixel loss weights of one frame.

    Attributes:
        semantic: (H, W) int64 train ids, void id where ignored.
        semantic_weights: (H, W) float32: 1, ``small_instance_weight`` on pixels of small
            thing instances, 0 on void.
        center: (1, H, W) float32 Gaussian heatmap in 0..1.
        center_weights: (H, W) float32: 1, 0 on void and crowd pixels.
        offset: (2, H, W) float32 (dy, dx) from each instance pixel to its centre; 0 elsewhere.
        offset_weights: (H, W) float32: 1 on thing-instance pixels, 0 elsewhere.
    """

    semantic: np.ndarray
    semantic_weights: np.ndarray
    center: np.ndarray
    center_weights: np.ndarray
    offset: np.ndarray
    offset_weights: np.ndarray


def gaussian_patch(sigma: float) -> np.ndarray:
    """(2r+1, 2r+1) float32 Gaussian with peak 1 at the centre, r = ceil(3 sigma)."""
    radius = int(np.ceil(3 * sigma))
    steps = np.arange(-radius, radius + 1, dtype=np.float32)
    line = np.exp(-steps ** 2 / (2 * sigma ** 2))
    return np.outer(line, line).astype(np.float32)


def _thing_mask(semantic: np.ndarray, valid: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """(H, W) bool: pixels of thing classes; raises on a value that is neither a train id nor
    void. A uint8 map (the usual case) takes one OpenCV look-up."""
    if semantic.dtype == np.uint8:
        import cv2
        codes = np.full(256, 2, dtype=np.uint8)  # 2: no train id, 1: thing, 0: stuff or void
        codes[:label_set.num_classes] = 0
        codes[list(label_set.thing_ids)] = 1
        if 0 <= label_set.void_id < 256:
            codes[label_set.void_id] = 0
        looked_up = cv2.LUT(semantic, codes)
        if not np.any(looked_up == 2):
            return looked_up == 1
    invalid = valid & ((semantic < 0) | (semantic >= label_set.num_classes))
    if np.any(invalid):
        bad = int(semantic[invalid][0])
        raise ValueError(f'semantic map holds {bad}: not a train id of label set '
                         f'{label_set.name!r} (0..{label_set.num_classes - 1}) nor void '
                         f'{label_set.void_id}')
    is_thing = np.zeros(label_set.num_classes, dtype=bool)
    is_thing[list(label_set.thing_ids)] = True
    thing = np.zeros(semantic.shape, dtype=bool)
    thing[valid] = is_thing[semantic[valid]]
    return thing


def panoptic_targets(semantic: np.ndarray, instance: np.ndarray, label_set: LabelSet,
                     sigma: float = 8.0, small_instance_area: int = 4096,
                     small_instance_weight: float = 3.0) -> PanopticTargets:
    """Panoptic-DeepLab targets.

    Args:
        semantic: (H, W) integer train ids; ``label_set.void_id`` marks ignored pixels.
        instance: (H, W) integer instance ids, 0 = none; instance pixels count only where the
            semantic class is a thing.
        label_set: Tells thing classes and the void id.
        sigma: Standard deviation of the centre Gaussian in pixels (8 at 1024x2048).
        small_instance_area: Instances with fewer pixels get ``small_instance_weight`` (4096
            at full Cityscapes resolution; scale it with the square of the resize factor).
        small_instance_weight: Semantic loss weight of small-instance pixels.

    Returns:
        PanopticTargets with the shapes given in its docstring.
    """
    semantic = np.asarray(semantic)
    instance = np.asarray(instance)
    if semantic.ndim != 2 or semantic.shape != instance.shape:
        raise ValueError(f'semantic {semantic.shape} and instance {instance.shape} must be '
                         'equal (H, W) maps')
    if sigma <= 0:
        raise ValueError(f'sigma must be positive, got {sigma}')
    if instance.size and int(instance.min()) < 0:
        raise ValueError(f'instance ids must be >= 0, got {int(instance.min())}')
    height, width = semantic.shape
    void = label_set.void_id
    valid = semantic != void
    thing = _thing_mask(semantic, valid, label_set)
    on_instance = thing & (instance > 0)

    # Area and centre of mass of every instance id, from its pixels only.
    pixel_rows, pixel_cols = np.nonzero(on_instance)
    ids = instance[pixel_rows, pixel_cols].astype(np.intp)
    area = np.bincount(ids)
    with np.errstate(invalid='ignore', divide='ignore'):
        center_y = np.bincount(ids, weights=pixel_rows) / area
        center_x = np.bincount(ids, weights=pixel_cols) / area

    semantic_weights = valid.astype(np.float32)
    small = area[ids] < small_instance_area
    semantic_weights[pixel_rows[small], pixel_cols[small]] = small_instance_weight

    offset = np.zeros((2, height, width), dtype=np.float32)
    offset[0, pixel_rows, pixel_cols] = center_y[ids] - pixel_rows
    offset[1, pixel_rows, pixel_cols] = center_x[ids] - pixel_cols

    center = np.zeros((1, height, width), dtype=np.float32)
    patch = gaussian_patch(sigma)
    radius = patch.shape[0] // 2
    for instance_id in np.flatnonzero(area[1:]) + 1:
        peak_y = int(np.round(center_y[instance_id]))
        peak_x = int(np.round(center_x[instance_id]))
        top, bottom = max(peak_y - radius, 0), min(peak_y + radius + 1, height)
        left, right = max(peak_x - radius, 0), min(peak_x + radius + 1, width)
        window = center[0, top:bottom, left:right]
        np.maximum(window, patch[top - peak_y + radius:bottom - peak_y + radius,
                                 left - peak_x + radius:right - peak_x + radius], out=window)

    crowd = thing & ~on_instance
    center_weights = (valid & ~crowd).astype(np.float32)
    return PanopticTargets(
        semantic=semantic.astype(np.int64), semantic_weights=semantic_weights, center=center,
        center_weights=center_weights, offset=offset,
        offset_weights=on_instance.astype(np.float32))
