"""Segment lists of a panoptic map: id, class, area, bounding box and score per segment.

numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class Segment:
    """One segment of a panoptic map.

    Attributes:
        id: Panoptic id (``category_id * label_divisor + instance``).
        category_id: Train id of the class.
        is_thing: Whether the class is a thing class.
        area: Pixel count.
        bbox: ``(x, y, width, height)`` in pixels, inclusive of the segment's pixels.
        score: Instance centre score for things when known, else mean confidence (0 without
            a confidence map).
    """

    id: int
    category_id: int
    is_thing: bool
    area: int
    bbox: Tuple[int, int, int, int]
    score: float


def extract_segments(panoptic: np.ndarray, thing_ids: Sequence[int], label_divisor: int = 1000,
                     void_id: int = 255, confidence: Optional[np.ndarray] = None,
                     instance_score: Optional[np.ndarray] = None) -> List[Segment]:
    """List the segments of a panoptic map, void excluded, in ascending id order.

    Vectorised: one ``np.unique`` and per-row / per-column ``bincount`` presence tables.

    Args:
        panoptic: int (H, W) panoptic ids.
        thing_ids: Thing class ids.
        label_divisor, void_id: Panoptic id encoding.
        confidence: Optional float (H, W) per-pixel confidence (score of stuff and of things
            without ``instance_score``).
        instance_score: Optional float (top_k,) score of instance id k+1.

    Returns:
        One ``Segment`` per non-void id.
    """
    panoptic = np.asarray(panoptic)
    if panoptic.ndim != 2:
        raise ValueError(f'panoptic must be (H, W), got shape {panoptic.shape}')
    if confidence is not None and np.shape(confidence) != panoptic.shape:
        raise ValueError(
            f'confidence {np.shape(confidence)} must match panoptic {panoptic.shape}')
    height, width = panoptic.shape
    ids, inverse = np.unique(panoptic, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = ids.size
    rows = np.repeat(np.arange(height), width)
    cols = np.tile(np.arange(width), height)
    row_hits = np.bincount(inverse * height + rows, minlength=count * height)
    row_hits = row_hits.reshape(count, height) > 0
    col_hits = np.bincount(inverse * width + cols, minlength=count * width)
    col_hits = col_hits.reshape(count, width) > 0
    top = np.argmax(row_hits, axis=1)
    bottom = height - 1 - np.argmax(row_hits[:, ::-1], axis=1)
    left = np.argmax(col_hits, axis=1)
    right = width - 1 - np.argmax(col_hits[:, ::-1], axis=1)
    area = np.bincount(inverse, minlength=count)
    if confidence is not None:
        weights = np.asarray(confidence, dtype=np.float64).reshape(-1)
        mean_confidence = np.bincount(inverse, weights=weights, minlength=count) / area
    else:
        mean_confidence = np.zeros(count)
    scores = None if instance_score is None else np.asarray(instance_score, dtype=np.float64)
    things = set(int(t) for t in thing_ids)
    segments: List[Segment] = []
    for index in range(count):
        panoptic_id = int(ids[index])
        category, instance_id = divmod(panoptic_id, label_divisor)
        if category == void_id:
            continue
        is_thing = category in things
        score = float(mean_confidence[index])
        if is_thing and instance_id > 0 and scores is not None and instance_id <= scores.size:
            score = float(scores[instance_id - 1])
        segments.append(Segment(
            id=panoptic_id, category_id=category, is_thing=is_thing, area=int(area[index]),
            bbox=(int(left[index]), int(top[index]), int(right[index] - left[index] + 1),
                  int(bottom[index] - top[index] + 1)),
            score=score))
    return segments
