"""Accumulators of the offline evaluation: per-camera mIoU / PQ, latency, frame accounting,
and the worst frames for the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..labels import LabelSet
from .metrics import ConfusionMatrix, PanopticQuality

#: Longest side of the worst-frame thumbnails kept for the report.
THUMBNAIL_SIDE = 480
#: Skipped frames listed one by one in metrics.json (all are counted).
MAX_LISTED_SKIPS = 1000


@dataclass
class CameraScores:
    """Confusion matrix and panoptic quality of one camera."""

    confusion: ConfusionMatrix
    panoptic: PanopticQuality
    frames: int = 0
    panoptic_frames: int = 0


@dataclass
class WorstFrame:
    """A poorly segmented frame kept for the report.

    Attributes:
        score: The frame's mIoU.
        order: Evaluation order (ties keep the earlier frame).
        name: ``topic@stamp`` or the folder frame name.
        image, gt_color, pred_color: uint8 (h, w, 3) RGB thumbnails.
    """

    score: float
    order: int
    name: str
    image: np.ndarray = field(repr=False)
    gt_color: np.ndarray = field(repr=False)
    pred_color: np.ndarray = field(repr=False)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    import cv2
    height, width = image.shape[:2]
    scale = THUMBNAIL_SIDE / float(max(height, width))
    if scale >= 1.0:
        return np.ascontiguousarray(image).copy()
    size = (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1))
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_NEAREST)


class EvalAccumulator:
    """Everything the evaluation counts; fed by one thread, read at the end.

    Args:
        label_set: Classes of the model (and of the ground truth).
        label_divisor: Panoptic id divisor of the model.
        worst_frames: How many lowest-mIoU frames to keep thumbnails of.
    """

    def __init__(self, label_set: LabelSet, label_divisor: int, worst_frames: int = 3) -> None:
        self.label_set = label_set
        self.label_divisor = label_divisor
        self.worst_frames = worst_frames
        self.cameras: Dict[str, CameraScores] = {}
        self.latencies_ms: List[float] = []
        self.read = 0
        self.evaluated = 0
        self.without_labels = 0
        self.skip_counts: Dict[str, int] = {}
        self.skipped: List[Dict[str, Any]] = []
        self._worst: List[WorstFrame] = []
        self._order = 0

    def _camera(self, name: str) -> CameraScores:
        if name not in self.cameras:
            self.cameras[name] = CameraScores(
                ConfusionMatrix(self.label_set.num_classes, self.label_set.void_id),
                PanopticQuality(self.label_set, self.label_divisor))
        return self.cameras[name]

    def add_skip(self, topic: str, stamp_ns: int, reason: str, detail: str) -> None:
        self.skip_counts[reason] = self.skip_counts.get(reason, 0) + 1
        if len(self.skipped) < MAX_LISTED_SKIPS:
            self.skipped.append({'topic': topic, 'stamp_ns': int(stamp_ns), 'reason': reason,
                                 'detail': detail})

    def add_frame(self, camera: str, name: str, latency_ms: float, image: np.ndarray,
                  pred_semantic: np.ndarray, pred_panoptic: np.ndarray,
                  gt_semantic: Optional[np.ndarray], gt_panoptic: Optional[np.ndarray]) -> None:
        """Score one evaluated frame (all maps (H, W); ground truth may be None)."""
        self.evaluated += 1
        self.latencies_ms.append(float(latency_ms))
        if gt_semantic is None:
            self.without_labels += 1
            return
        scores = self._camera(camera)
        frame_confusion = ConfusionMatrix(self.label_set.num_classes, self.label_set.void_id)
        frame_confusion.update(pred_semantic, gt_semantic)
        scores.confusion += frame_confusion
        scores.frames += 1
        if gt_panoptic is not None:
            scores.panoptic.update(pred_panoptic, gt_panoptic)
            scores.panoptic_frames += 1
        self._keep_if_worst(frame_confusion.mean_iou(), name, image, pred_semantic, gt_semantic)

    def _keep_if_worst(self, score: float, name: str, image: np.ndarray,
                       pred: np.ndarray, gt: np.ndarray) -> None:
        if self.worst_frames <= 0 or math.isnan(score):
            return
        self._order += 1
        if len(self._worst) >= self.worst_frames and score >= self._worst[-1].score:
            return
        # Shrink the id maps first (nearest keeps ids), then colour the small ones.
        self._worst.append(WorstFrame(score, self._order, name, _thumbnail(image),
                                      self.label_set.colorize(_thumbnail(gt)),
                                      self.label_set.colorize(_thumbnail(pred))))
        self._worst.sort(key=lambda frame: (frame.score, frame.order))
        del self._worst[self.worst_frames:]

    def worst(self) -> List[WorstFrame]:
        """The kept frames, worst (lowest mIoU) first."""
        return list(self._worst)

    def total_confusion(self) -> ConfusionMatrix:
        total = ConfusionMatrix(self.label_set.num_classes, self.label_set.void_id)
        for scores in self.cameras.values():
            total += scores.confusion
        return total

    def total_panoptic(self) -> PanopticQuality:
        total = PanopticQuality(self.label_set, self.label_divisor)
        for scores in self.cameras.values():
            total += scores.panoptic
        return total

    @property
    def skipped_total(self) -> int:
        return sum(self.skip_counts.values())

    def latency_summary(self) -> Dict[str, Optional[float]]:
        if not self.latencies_ms:
            return {'count': 0, 'mean': None, 'p50': None, 'p95': None, 'max': None}
        values = np.asarray(self.latencies_ms, dtype=np.float64)
        return {'count': int(values.size), 'mean': float(values.mean()),
                'p50': float(np.percentile(values, 50)), 'p95': float(np.percentile(values, 95)),
                'max': float(values.max())}

    def scores_dict(self) -> Dict[str, Any]:
        """mIoU / PQ over all cameras and per camera (None where nothing was scored)."""
        names = self.label_set.names
        total_frames = sum(s.frames for s in self.cameras.values())
        panoptic_frames = sum(s.panoptic_frames for s in self.cameras.values())
        data: Dict[str, Any] = {
            'semantic': self.total_confusion().to_dict(names) if total_frames else None,
            'panoptic': self.total_panoptic().result().to_dict() if panoptic_frames else None,
            'per_camera': {},
        }
        for camera, scores in sorted(self.cameras.items()):
            panoptic = scores.panoptic.result() if scores.panoptic_frames else None
            data['per_camera'][camera] = {
                'frames': scores.frames,
                'mean_iou': _plain(scores.confusion.mean_iou()) if scores.frames else None,
                'pq': _plain(panoptic.pq) if panoptic else None,
                'sq': _plain(panoptic.sq) if panoptic else None,
                'rq': _plain(panoptic.rq) if panoptic else None,
            }
        return data


def _plain(value: float) -> Optional[float]:
    return None if value is None or math.isnan(value) else float(value)


def frame_accounting(accumulator: EvalAccumulator) -> Tuple[int, int, int]:
    """(read, evaluated, skipped)."""
    return accumulator.read, accumulator.evaluated, accumulator.skipped_total
