"""Segmentation metrics: confusion-matrix mIoU and panoptic quality (PQ / SQ / RQ).

Both accumulators are plain numpy, vectorised (one ``np.bincount`` over the pixels per
frame), and mergeable with ``+=`` so parallel workers can each score a shard and combine.

Panoptic maps follow the graph contract of ``seg_perception.manifest``: (H, W) integers
``class * label_divisor + instance`` where ``class`` is a train id. Panoptic quality is
computed as the COCO and Cityscapes panoptic evaluators compute it:

* segments are matched when they have the same class and IoU > 0.5 (strictly), which makes
  the matching unique for non-overlapping segments;
* ``PQ = sum(IoU of matches) / (TP + FP / 2 + FN / 2)``, ``SQ = sum(IoU) / TP`` (0 when
  TP is 0), ``RQ = TP / (TP + FP / 2 + FN / 2)``, per class; the averages run over the
  classes that occur (TP + FP + FN > 0) in the accumulated data;
* ground-truth pixels of the void class (``label_set.void_id``) are ignored: they are
  removed from the union of a match, and a predicted segment is not a false positive when
  more than half of its area lies on void plus crowd of its own class;
* crowd: a ground-truth thing pixel with instance 0 belongs to the crowd region of its class.
  Crowd regions are never matched and never false negatives.

Predicted pixels whose class is the void id are not a segment (not scored). A predicted
thing pixel with instance 0 is scored as one segment of that class, like any other id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..labels import LabelSet

# Above this id a lookup table would be wasteful; fall back to np.unique (sorting).
_MAX_LUT_ID = 1 << 22


def _check_same_shape(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {pred.shape} differs from ground truth {gt.shape}')
    if not np.issubdtype(pred.dtype, np.integer) or not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(
            f'prediction and ground truth must be integer maps (got {pred.dtype}, {gt.dtype})')


class ConfusionMatrix:
    """Pixel confusion matrix over ``num_classes`` train ids; rows = ground truth.

    Ground-truth pixels equal to ``ignore_index`` are not counted. A prediction equal to
    ``ignore_index`` (no class) counts as a miss of the ground-truth class. Any other value
    outside ``0..num_classes - 1`` raises ``ValueError``.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if int(num_classes) < 1:
            raise ValueError(f'num_classes must be at least 1, got {num_classes}')
        if int(ignore_index) < num_classes:
            raise ValueError(
                f'ignore_index {ignore_index} must be >= num_classes ({num_classes}) so it '
                'cannot collide with a class id')
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        # Column num_classes counts pixels predicted as ignore_index.
        self._counts = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """(C, C) int64 counts; ``matrix[g, p]`` = pixels of class g predicted as p."""
        return self._counts[:, :self.num_classes]

    def reset(self) -> None:
        self._counts[:] = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame (or a batch).

        Args:
            pred: Predicted train ids, integer array of any shape, typically (H, W).
            gt: Ground-truth train ids, same shape; ``ignore_index`` marks void pixels.
        """
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        _check_same_shape(pred, gt)
        if pred.size == 0:
            return
        largest_valid = max(self.ignore_index, self.num_classes - 1)
        for name, values in (('prediction', pred), ('ground truth', gt)):
            low, high = int(values.min()), int(values.max())
            if low < 0 or high > largest_valid:
                bad = low if low < 0 else high
                raise ValueError(
                    f'{name} contains value {bad}; valid are 0..{self.num_classes - 1} and '
                    f'the ignore index {self.ignore_index}')
        bins = largest_valid + 1
        # A 16-bit key when it fits: building the key dominates the cost at 1024x512.
        key_type = np.uint16 if bins * bins <= 1 << 16 else np.int64
        key = gt.astype(key_type).ravel() * key_type(bins) + pred.astype(key_type).ravel()
        table = np.bincount(key, minlength=bins * bins).reshape(bins, bins)
        valid = np.zeros(bins, dtype=bool)
        valid[:self.num_classes] = True
        valid[self.ignore_index] = True
        for name, totals in (('ground truth', table.sum(axis=1)),
                             ('prediction', table.sum(axis=0))):
            bad = np.flatnonzero((totals > 0) & ~valid)
            if bad.size:
                raise ValueError(
                    f'{name} contains value {int(bad[0])}; valid are 0..{self.num_classes - 1}'
                    f' and the ignore index {self.ignore_index}')
        self._counts[:, :self.num_classes] += table[:self.num_classes, :self.num_classes]
        self._counts[:, self.num_classes] += table[:self.num_classes, self.ignore_index]

    def __iadd__(self, other: 'ConfusionMatrix') -> 'ConfusionMatrix':
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(
                f'cannot merge confusion matrices of {other.num_classes} classes / ignore '
                f'{other.ignore_index} into {self.num_classes} classes / ignore '
                f'{self.ignore_index}')
        self._counts += other._counts
        return self

    def __add__(self, other: 'ConfusionMatrix') -> 'ConfusionMatrix':
        merged = ConfusionMatrix(self.num_classes, self.ignore_index)
        merged += self
        merged += other
        return merged

    def iou(self) -> np.ndarray:
        """(C,) float64 intersection over union per class; nan where absent in gt and pred."""
        true_positive = np.diag(self._counts).astype(np.float64)
        gt_total = self._counts.sum(axis=1)
        pred_total = self.matrix.sum(axis=0)
        union = (gt_total + pred_total).astype(np.float64) - true_positive
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(union > 0, true_positive / union, np.nan)

    def mean_iou(self) -> float:
        """Mean of ``iou()`` over classes present in gt or prediction; nan if none."""
        values = self.iou()
        return float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')

    def class_accuracy(self) -> np.ndarray:
        """(C,) float64 recall per class; nan for classes absent from the ground truth."""
        gt_total = self._counts.sum(axis=1).astype(np.float64)
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(gt_total > 0, np.diag(self._counts) / gt_total, np.nan)

    def pixel_accuracy(self) -> float:
        """Correct pixels / non-ignored ground-truth pixels; nan before any update."""
        total = int(self._counts.sum())
        return float(np.trace(self._counts)) / total if total else float('nan')

    def to_dict(self, class_names: Optional[Sequence[str]] = None) -> Dict[str, object]:
        """Plain-Python summary (nan becomes None) for JSON / CSV logs."""
        names = list(class_names) if class_names is not None else \
            [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(
                f'{len(names)} class names given for a {self.num_classes}-class matrix')
        return {
            'mean_iou': _none_if_nan(self.mean_iou()),
            'pixel_accuracy': _none_if_nan(self.pixel_accuracy()),
            'iou': {n: _none_if_nan(v) for n, v in zip(names, self.iou().tolist())},
        }


def _none_if_nan(value: float) -> Optional[float]:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class PanopticClassResult:
    """PQ / SQ / RQ of one class (nan when the class never occurred) and its counts."""

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int
    iou_sum: float


@dataclass(frozen=True)
class PanopticResult:
    """Panoptic quality averaged over classes that occur (nan when no class of the group does).

    Attributes:
        pq, sq, rq: Over all classes.
        pq_things, sq_things, rq_things: Over thing classes.
        pq_stuff, sq_stuff, rq_stuff: Over stuff classes.
        per_class: Class name -> ``PanopticClassResult`` for every class of the label set.
        tp, fp, fn: Totals over all classes.
        num_classes, num_things, num_stuff: How many classes each average ran over.
    """

    pq: float
    sq: float
    rq: float
    pq_things: float
    sq_things: float
    rq_things: float
    pq_stuff: float
    sq_stuff: float
    rq_stuff: float
    per_class: Dict[str, PanopticClassResult]
    tp: int
    fp: int
    fn: int
    num_classes: int
    num_things: int
    num_stuff: int

    def to_dict(self) -> Dict[str, object]:
        """Plain-Python summary (nan becomes None) for JSON / CSV logs."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, float):
                data[key] = _none_if_nan(value)
        for values in data['per_class'].values():
            for key in ('pq', 'sq', 'rq'):
                values[key] = _none_if_nan(values[key])
        return data


def _dense_segments(panoptic: np.ndarray, cap: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ids of a flat panoptic map, each pixel's index into them, and their areas.

    Ids at or above ``cap`` (the void range, already validated) collapse into one id ``cap``.

    Returns:
        ids: (S,) int64 sorted distinct ids; dense: (N,) intp in 0..S-1; areas: (S,) int64.
    """
    clipped = np.minimum(panoptic, cap, dtype=np.intp)
    if cap < _MAX_LUT_ID:
        counts = np.bincount(clipped, minlength=cap + 1)
        ids = np.flatnonzero(counts)
        lut = np.zeros(cap + 1, dtype=np.intp)
        lut[ids] = np.arange(ids.size)
        np.take(lut, clipped, out=clipped, mode='clip')  # in place, unbuffered
        return ids.astype(np.int64), clipped, counts[ids].astype(np.int64)
    ids, dense, areas = np.unique(clipped, return_inverse=True, return_counts=True)
    return ids.astype(np.int64), dense.ravel(), areas.astype(np.int64)


class PanopticQuality:
    """Accumulates per-class TP / FP / FN counts and matched IoU over frames.

    Args:
        label_set: Classes (train ids), which of them are things, and the void id.
        label_divisor: Panoptic id = class * label_divisor + instance.
    """

    def __init__(self, label_set: LabelSet, label_divisor: int = 1000) -> None:
        if int(label_divisor) < 1:
            raise ValueError(f'label_divisor must be positive, got {label_divisor}')
        if label_set.void_id < label_set.num_classes:
            raise ValueError(
                f'label set {label_set.name!r}: panoptic quality needs a void id above the '
                f'train ids, got {label_set.void_id}')
        self.label_set = label_set
        self.label_divisor = int(label_divisor)
        num_classes = label_set.num_classes
        self._is_thing = np.zeros(num_classes, dtype=bool)
        self._is_thing[list(label_set.thing_ids)] = True
        self.tp = np.zeros(num_classes, dtype=np.int64)
        self.fp = np.zeros(num_classes, dtype=np.int64)
        self.fn = np.zeros(num_classes, dtype=np.int64)
        self.iou_sum = np.zeros(num_classes, dtype=np.float64)

    def reset(self) -> None:
        for counts in (self.tp, self.fp, self.fn, self.iou_sum):
            counts[:] = 0

    def _flat_segments(self, panoptic: np.ndarray, what: str
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Validate one panoptic map and index its segments (void ones collapsed into one).

        Returns:
            ids (S,) int64, dense (N,) intp, areas (S,) int64, classes (S,) int64 where the
            void segment has class ``void_id``.
        """
        flat = panoptic.ravel()
        divisor, void = self.label_divisor, self.label_set.void_id
        valid_classes = (f'not a train id of label set {self.label_set.name!r} '
                         f'(0..{self.label_set.num_classes - 1}) nor void {void} '
                         f'(label_divisor {divisor})')
        low, high = int(flat.min()), int(flat.max())
        if low < 0:
            raise ValueError(f'{what} panoptic map has negative id {low}')
        cap = self.label_set.num_classes * divisor
        if high >= (void + 1) * divisor:
            raise ValueError(
                f'{what} panoptic id {high} has class {high // divisor}, {valid_classes}')
        if high >= cap:
            lowest_above = int(np.min(flat, where=flat >= cap, initial=high))
            if lowest_above < void * divisor:
                raise ValueError(f'{what} panoptic id {lowest_above} has class '
                                 f'{lowest_above // divisor}, {valid_classes}')
        ids, dense, areas = _dense_segments(flat, cap)
        classes = ids // divisor
        classes[ids == cap] = void
        return ids, dense, areas, classes

    def update(self, pred_panoptic: np.ndarray, gt_panoptic: np.ndarray) -> None:
        """Score one frame.

        Args:
            pred_panoptic: (H, W) integer predicted panoptic ids (class * divisor + instance).
            gt_panoptic: (H, W) integer ground-truth panoptic ids, same convention; void
                class pixels are ignored, thing pixels with instance 0 are crowd.
        """
        pred = np.asarray(pred_panoptic)
        gt = np.asarray(gt_panoptic)
        _check_same_shape(pred, gt)
        if gt.size == 0:
            return
        gt_ids, gt_dense, gt_area, gt_class = self._flat_segments(gt, 'ground-truth')
        pred_ids, pred_dense, pred_area, pred_class = self._flat_segments(pred, 'predicted')

        # (S_gt, S_pred) pixel counts of every overlapping segment pair.
        pair = gt_dense
        pair *= pred_ids.size
        pair += pred_dense
        intersection = np.bincount(pair, minlength=gt_ids.size * pred_ids.size)
        intersection = intersection.reshape(gt_ids.size, pred_ids.size)

        void = self.label_set.void_id
        gt_void = gt_class == void
        gt_real = ~gt_void
        gt_crowd = gt_real & (gt_ids % self.label_divisor == 0)
        gt_crowd[gt_real] &= self._is_thing[gt_class[gt_real]]
        gt_scored = gt_real & ~gt_crowd
        pred_scored = pred_class != void

        same_class = gt_class[:, None] == pred_class[None, :]
        void_overlap = intersection[gt_void].sum(axis=0)
        union = gt_area[:, None] + pred_area[None, :] - intersection - void_overlap[None, :]
        candidate = same_class & gt_scored[:, None] & pred_scored[None, :] & (intersection > 0)
        iou = np.zeros(intersection.shape, dtype=np.float64)
        iou[candidate] = intersection[candidate] / union[candidate]
        matched = iou > 0.5
        match_gt, match_pred = np.nonzero(matched)

        num_classes = self.label_set.num_classes
        match_class = gt_class[match_gt]
        self.tp += np.bincount(match_class, minlength=num_classes)
        self.iou_sum += np.bincount(match_class, weights=iou[match_gt, match_pred],
                                    minlength=num_classes)

        missed = gt_scored & ~matched.any(axis=1)
        self.fn += np.bincount(gt_class[missed], minlength=num_classes)

        crowd_overlap = (intersection * (gt_crowd[:, None] & same_class)).sum(axis=0)
        mostly_ignored = (void_overlap + crowd_overlap) * 2 > pred_area
        spurious = pred_scored & ~matched.any(axis=0) & ~mostly_ignored
        self.fp += np.bincount(pred_class[spurious], minlength=num_classes)

    def __iadd__(self, other: 'PanopticQuality') -> 'PanopticQuality':
        if not isinstance(other, PanopticQuality):
            return NotImplemented
        if other.label_set != self.label_set or other.label_divisor != self.label_divisor:
            raise ValueError(
                'cannot merge panoptic accumulators of different label sets or divisors '
                f'({other.label_set.name!r}/{other.label_divisor} into '
                f'{self.label_set.name!r}/{self.label_divisor})')
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou_sum += other.iou_sum
        return self

    def __add__(self, other: 'PanopticQuality') -> 'PanopticQuality':
        merged = PanopticQuality(self.label_set, self.label_divisor)
        merged += self
        merged += other
        return merged

    def result(self) -> PanopticResult:
        """PQ / SQ / RQ per class and averaged over all / thing / stuff classes."""
        tp = self.tp.astype(np.float64)
        occurs = (self.tp + self.fp + self.fn) > 0
        denominator = tp + 0.5 * self.fp + 0.5 * self.fn
        with np.errstate(invalid='ignore', divide='ignore'):
            pq = np.where(occurs, self.iou_sum / denominator, np.nan)
            sq = np.where(occurs, np.where(tp > 0, self.iou_sum / tp, 0.0), np.nan)
            rq = np.where(occurs, tp / denominator, np.nan)

        def average(values: np.ndarray, group: np.ndarray) -> float:
            chosen = values[group & occurs]
            return float(chosen.mean()) if chosen.size else float('nan')

        groups = {'': np.ones_like(occurs), '_things': self._is_thing,
                  '_stuff': ~self._is_thing}
        averages = {}
        for suffix, group in groups.items():
            averages['pq' + suffix] = average(pq, group)
            averages['sq' + suffix] = average(sq, group)
            averages['rq' + suffix] = average(rq, group)
        per_class = {
            name: PanopticClassResult(pq=float(pq[i]), sq=float(sq[i]), rq=float(rq[i]),
                                      tp=int(self.tp[i]), fp=int(self.fp[i]),
                                      fn=int(self.fn[i]), iou_sum=float(self.iou_sum[i]))
            for i, name in enumerate(self.label_set.names)
        }
        return PanopticResult(
            per_class=per_class, tp=int(self.tp.sum()), fp=int(self.fp.sum()),
            fn=int(self.fn.sum()), num_classes=int(occurs.sum()),
            num_things=int((occurs & self._is_thing).sum()),
            num_stuff=int((occurs & ~self._is_thing).sum()), **averages)


def panoptic_quality(pred: np.ndarray, gt: np.ndarray, label_set: LabelSet,
                     label_divisor: int = 1000) -> PanopticResult:
    """Panoptic quality of one (H, W) predicted / ground-truth panoptic pair."""
    accumulator = PanopticQuality(label_set, label_divisor)
    accumulator.update(pred, gt)
    return accumulator.result()
