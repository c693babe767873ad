"""Centre NMS, grouping and class votes on the grouping grid (steps 3-5 of ``reference``).

The building blocks that ``reference.panoptic_from_semantic`` runs in order; see the module
docstring of ``reference`` for the written spec. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from .grid import INVALID_CENTER_DISTANCE, num_center_slots


@dataclass
class Centers:
    """Instance centres found on the grouping grid, in top-k order.

    Attributes:
        y, x: int32 (K,) grid coordinates of each slot (meaningless where not ``valid``).
        score: float32 (K,) heatmap value of each slot, 0 where not ``valid``.
        valid: bool (K,) whether the slot holds a centre; valid slots come first.
    """

    y: np.ndarray
    x: np.ndarray
    score: np.ndarray
    valid: np.ndarray

    @property
    def count(self) -> int:
        return int(self.valid.sum())


def _max_pool_same(heatmap: np.ndarray, kernel: int) -> np.ndarray:
    """Max over a ``kernel x kernel`` window, stride 1, padding that never wins. (h, w)."""
    radius = kernel // 2
    if radius == 0:
        return heatmap.copy()
    padded = np.pad(heatmap, radius, mode='constant', constant_values=-np.inf)
    height, width = heatmap.shape
    rows = padded[:, radius:radius + width].copy()
    for shift in range(kernel):
        np.maximum(rows, padded[:, shift:shift + width], out=rows)
    pooled = rows[radius:radius + height].copy()
    for shift in range(kernel):
        np.maximum(pooled, rows[shift:shift + height], out=pooled)
    return pooled


def find_centers(center: np.ndarray, center_threshold: float, nms_kernel: int,
                 top_k: int) -> Centers:
    """Centre NMS by max-pooling plus top-k (step 3), on whatever grid ``center`` is given.

    Args:
        center: float (h, w) centre heatmap (already sampled on the grouping grid).
        center_threshold: Centres must be strictly above this (compared in float32).
        nms_kernel: Odd max-pool kernel in cells of ``center``.
        top_k: Number of slots; K = ``min(top_k, h * w)``.

    Returns:
        ``Centers`` with K slots, valid ones first in descending score.
    """
    heat = np.asarray(center, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f'center heatmap must be (h, w), got shape {heat.shape}')
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(f'nms_kernel must be a positive odd number, got {nms_kernel}')
    threshold = np.float32(center_threshold)
    keep = (heat == _max_pool_same(heat, nms_kernel)) & (heat > threshold)
    masked = np.where(keep, heat, np.float32(-np.inf)).ravel()
    slots = num_center_slots(top_k, *heat.shape)
    order = np.argsort(-masked, kind='stable')[:slots]
    scores = masked[order]
    valid = scores > threshold
    y, x = np.divmod(order, heat.shape[1])
    return Centers(y=y.astype(np.int32), x=x.astype(np.int32),
                   score=np.where(valid, scores, np.float32(0)).astype(np.float32),
                   valid=valid)


def grouping_distances(offset: np.ndarray, centers: Centers, stride: int
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Squared grid distances from every cell's offset target to every valid centre (step 4).

    Args:
        offset: float (2, h, w) (dy, dx) in network pixels, sampled on the grouping grid.
        centers: Output of ``find_centers`` on the same grid.
        stride: Grouping stride (network pixels per cell).

    Returns:
        ``(distance, target_norm)``: float32 (h*w, K) ``|t - c|^2 - |t|^2`` per cell and slot
        (``INVALID_CENTER_DISTANCE`` for invalid slots), float32 (h*w, 1) ``|t|^2``, with
        coordinates from the middle cell, in the graph's order of operations.
    """
    offset = np.asarray(offset, dtype=np.float32)
    if offset.ndim != 3 or offset.shape[0] != 2:
        raise ValueError(f'offset must be (2, h, w), got shape {offset.shape}')
    height, width = offset.shape[1:]
    step = np.float32(stride)
    grid_y, grid_x = np.meshgrid(np.arange(height, dtype=np.float32) - np.float32(height // 2),
                                 np.arange(width, dtype=np.float32) - np.float32(width // 2),
                                 indexing='ij')
    target_y = (grid_y + offset[0] / step).reshape(-1, 1)
    target_x = (grid_x + offset[1] / step).reshape(-1, 1)
    distance = np.full((height * width, centers.valid.size), INVALID_CENTER_DISTANCE,
                       dtype=np.float32)
    slots = np.flatnonzero(centers.valid)
    if slots.size:
        center_y = (centers.y[slots] - height // 2).astype(np.float32)
        center_x = (centers.x[slots] - width // 2).astype(np.float32)
        # (ty * -2cy + tx * -2cx) + 1 * |c|^2, summed in the graph's order.
        distance[:, slots] = (target_y * (np.float32(-2) * center_y)
                              + target_x * (np.float32(-2) * center_x)
                              + (center_y * center_y + center_x * center_x))
    return distance, target_y * target_y + target_x * target_x


def nearest_centers(distance: np.ndarray, valid: np.ndarray, shape: Tuple[int, int]
                    ) -> np.ndarray:
    """int32 ``shape`` grid of the nearest valid slot + 1 per cell (ties -> lowest slot),
    0 everywhere when no slot is valid."""
    if not np.any(valid):
        return np.zeros(shape, dtype=np.int32)
    return (np.argmin(distance, axis=1).astype(np.int32) + 1).reshape(shape)


def center_votes(distance: np.ndarray, target_norm: np.ndarray, thing_cells: np.ndarray,
                 radius: float) -> np.ndarray:
    """Per slot, the thing cells whose offset target lies strictly within ``radius`` (grid
    units) of the centre (step 3b). int64 (K,); 0 for invalid slots.

    ``|t - c|^2 < radius^2`` is evaluated as ``distance < radius^2 - |t|^2`` in float32, as
    the graph does.

    Args:
        distance, target_norm: From ``grouping_distances`` ((cells, K), (cells, 1)).
        thing_cells: bool (cells,) cells whose class is a thing class.
        radius: Radius in grid cells.
    """
    reach = np.where(np.asarray(thing_cells).reshape(-1, 1),
                     np.float32(radius * radius) - target_norm,
                     np.float32(-INVALID_CENTER_DISTANCE))
    return np.count_nonzero(distance < reach, axis=0)


def vote_instance_classes(assignment: np.ndarray, semantic: np.ndarray,
                          thing_ids: Sequence[int], slots: int
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """Majority vote of thing classes per instance (step 5, without the area rules).

    Args:
        assignment: int (h, w) grid instance ids 0..slots (0 = none).
        semantic: int (h, w) grid semantic classes.
        thing_ids: Thing class ids.
        slots: Number of instance slots K.

    Returns:
        ``(classes, cells)``: int32 (K,) voted class of instance k+1 (lowest thing id when it
        has no thing cell) and int64 (K,) number of its thing cells.
    """
    things = np.array(sorted(set(int(t) for t in thing_ids)), dtype=np.int64)
    if things.size == 0:
        return np.zeros(slots, dtype=np.int32), np.zeros(slots, dtype=np.int64)
    lookup = np.full(max(int(semantic.max(initial=0)), int(things[-1])) + 1, -1, np.int64)
    lookup[things] = np.arange(things.size)
    thing_index = lookup[np.asarray(semantic, dtype=np.int64).ravel()]
    instance = np.asarray(assignment, dtype=np.int64).ravel()
    voting = (thing_index >= 0) & (instance > 0)
    votes = np.bincount((instance[voting] - 1) * things.size + thing_index[voting],
                        minlength=slots * things.size).reshape(slots, things.size)
    return things[np.argmax(votes, axis=1)].astype(np.int32), votes.sum(axis=1)
