"""Scores and pictures of the demo, without ROS: per-camera mIoU / PQ / latency, contact sheet.

The demo feeds generated frames whose ground truth it keeps; each output the node publishes
is matched to its frame by header stamp and scored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..evaluation.metrics import ConfusionMatrix, PanopticQuality
from ..images.preprocess import resize_nearest
from ..images.visualize import instance_color, panoptic_color, semantic_color
from ..labels import LabelSet


@dataclass
class CameraScore:
    """Accumulated quality and latency of one camera's outputs.

    Args:
        label_set: Classes of the model (and of the ground truth).
        label_divisor: Panoptic id encoding of both prediction and ground truth.
    """

    label_set: LabelSet
    label_divisor: int = 1000
    latencies_s: List[float] = field(default_factory=list)
    frames_scored: int = 0

    def __post_init__(self) -> None:
        self.confusion = ConfusionMatrix(self.label_set.num_classes, self.label_set.void_id)
        self.panoptic = PanopticQuality(self.label_set, self.label_divisor)

    def add(self, semantic: np.ndarray, panoptic: np.ndarray, gt_semantic: np.ndarray,
            gt_panoptic: np.ndarray) -> None:
        """Score one output against its ground truth.

        Args:
            semantic: uint8 (h, w) predicted train ids.
            panoptic: int32 (h, w) predicted panoptic ids.
            gt_semantic: uint8 (H, W) ground-truth train ids (255 void).
            gt_panoptic: int32 (H, W) ground-truth panoptic ids.

        The ground truth is resized (nearest) to the prediction's size when they differ
        (``output_resolution: network``).
        """
        if gt_semantic.shape != semantic.shape:
            gt_semantic = resize_nearest(gt_semantic, semantic.shape)
            gt_panoptic = resize_nearest(gt_panoptic, semantic.shape)
        self.confusion.update(semantic, gt_semantic)
        self.panoptic.update(panoptic, gt_panoptic)
        self.frames_scored += 1

    def mean_iou(self) -> float:
        return self.confusion.mean_iou() if self.frames_scored else math.nan

    def pq(self) -> float:
        return self.panoptic.result().pq if self.frames_scored else math.nan

    def latency_ms(self) -> Tuple[Optional[float], Optional[float]]:
        """(p50, p95) publish-to-receipt latency in ms, None without samples."""
        if not self.latencies_s:
            return None, None
        p50, p95 = np.percentile(np.asarray(self.latencies_s), [50.0, 95.0]) * 1e3
        return float(p50), float(p95)


@dataclass
class SheetRow:
    """One contact-sheet row: input and the node's maps for one frame."""

    image: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    panoptic: np.ndarray
    title: str = ''


def contact_sheet(rows: Sequence[SheetRow], label_set: LabelSet, label_divisor: int,
                  tile_width: int = 512) -> np.ndarray:
    """``input | semantic | instance | panoptic`` tiles, one row per frame.

    Returns:
        uint8 (rows * tile_h, 4 * tile_width, 3) RGB; tiles keep each frame's aspect ratio,
        with the row title written on the input tile.
    """
    import cv2
    if not rows:
        raise ValueError('contact_sheet needs at least one row')
    strips = []
    for row in rows:
        height, width = row.semantic.shape
        tile_hw = (max(1, round(height * tile_width / width)), tile_width)
        image = cv2.resize(np.ascontiguousarray(row.image), (tile_hw[1], tile_hw[0]),
                           interpolation=cv2.INTER_AREA)
        tiles = [image] + [resize_nearest(picture, tile_hw) for picture in (
            semantic_color(row.semantic, label_set), instance_color(row.instance),
            panoptic_color(row.panoptic, label_set, label_divisor))]
        strip = np.concatenate(tiles, axis=1)
        if row.title:
            cv2.putText(strip, row.title, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                        (255, 255, 255), 2, cv2.LINE_AA)
        strips.append(strip)
    width = max(strip.shape[1] for strip in strips)
    return np.concatenate([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0)))
                           for s in strips], axis=0)


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Plain text table with right-aligned columns after the first."""
    table = [list(header)] + [list(row) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for row in table:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width
                                             in zip(row[1:], widths[1:])]
        lines.append('  '.join(cells))
    return '\n'.join(lines)
