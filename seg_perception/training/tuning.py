"""Search a panoptic model's post-processing settings on validation frames.

The Panoptic-DeepLab defaults (centre threshold 0.1, NMS kernel 7, stuff area 2048) were
chosen for Cityscapes at 2048x1024 and for that paper's networks. A smaller input (areas are
in network pixels, so 2048 at 1024x512 is four times stricter) or a network with a
weaker centre head wants other values. ``tune_postprocess`` finds them by coordinate search
on frames with ground truth, maximising PQ:

1. the network runs once per frame (``collect_head_samples``, through the export graph's
   normalisation and network, so the same heads as every backend); the argmax, centre
   heatmap and offsets are kept;
2. each candidate setting is scored by the numpy reference post-processing
   (``postprocess.panoptic_from_semantic``, which tests hold equal to the fused graph) and
   the metrics of ``metrics``;
3. one setting at a time takes its best value over ``SEARCH_SPACE`` with the others held,
   for up to ``rounds`` rounds or until a round changes nothing. The mIoU reported beside
   PQ is that of the argmax semantic map, which no setting changes (thing pixels take
   their instance's voted class in the panoptic map only).

``grouping_stride`` and ``top_k`` are not searched: they set the graph's cost, not only its
output. Use frames that were not used to train the model and are not the ones you report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..manifest import ModelManifest, PostprocessSettings

#: Values tried per setting (the current value is always tried too).
#: The grouping switches come first: the other settings' best values depend on them.
SEARCH_SPACE: Dict[str, Tuple] = {
    'class_aware_grouping': (False, True),
    'min_center_votes': (0, 32, 64, 128, 256),
    'center_threshold': (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5),
    'nms_kernel': (7, 13, 19, 27, 41),
    'stuff_area': (0, 256, 512, 1024, 2048, 4096),
    'min_instance_area': (0, 64, 256, 1024),
}
#: A value replaces the current one only when it raises PQ by more than this (noise guard).
MIN_GAIN = 1e-4


class TuningError(ValueError):
    """The model or the frames cannot be tuned (semantic-only model, no frames, bad size)."""


@dataclass(frozen=True)
class HeadSample:
    """Network outputs and ground truth of one frame, at the network size (H, W).

    Attributes:
        semantic: uint8 (H, W) argmax class.
        center: float32 (H/r, W/r) centre heatmap (r = the network's instance stride).
        offset: float32 (2, H/r, W/r) (dy, dx) offsets in network pixels.
        gt_semantic: uint8 (H, W) ground-truth train ids (void = the label set's void id).
        gt_panoptic: int32 (H, W) ground truth ``class * label_divisor + instance``.
    """

    semantic: np.ndarray
    center: np.ndarray
    offset: np.ndarray
    gt_semantic: np.ndarray
    gt_panoptic: np.ndarray


@dataclass(frozen=True)
class TuningScore:
    """Quality of one setting over all samples (mIoU of the argmax semantic map)."""

    pq: float
    sq: float
    rq: float
    pq_things: float
    pq_stuff: float
    miou: float

    def as_dict(self) -> Dict[str, float]:
        return {k: round(float(v), 4) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Trial:
    settings: PostprocessSettings
    score: TuningScore


@dataclass
class TuningResult:
    """Outcome of ``tune_postprocess``.

    Attributes:
        baseline: The starting settings and their score.
        best: The chosen settings and their score (``baseline`` when nothing beat it).
        trials: Every distinct setting scored, in the order tried.
        frames: Number of frames scored.
    """

    baseline: Trial
    best: Trial
    trials: List[Trial] = field(default_factory=list)
    frames: int = 0

    def changed(self) -> Dict[str, Tuple[object, object]]:
        """Setting name -> (baseline value, chosen value), for the settings that changed."""
        before = dataclasses.asdict(self.baseline.settings)
        after = dataclasses.asdict(self.best.settings)
        return {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def require_panoptic(manifest: ModelManifest) -> None:
    """Raise ``TuningError`` unless the model has panoptic post-processing to tune."""
    if not manifest.is_panoptic:
        raise TuningError(f'model {manifest.name} is {manifest.task}: only panoptic models '
                          'have post-processing settings to tune')


def collect_head_samples(network, manifest: ModelManifest, frames: Iterable,
                         device: str = 'cpu',
                         progress: Optional[Callable[[int], None]] = None) -> List[HeadSample]:
    """Run ``network`` once on each frame and keep what post-processing needs.

    Args:
        network: The package's torch network (``package.load_torch_network``).
        manifest: Its manifest (panoptic).
        frames: Objects with ``image`` (h, w, 3) uint8 RGB, ``semantic`` (h, w) train ids
            and ``instance`` (h, w) ids; resized to the network size when h, w differ.
        device: Torch device.
        progress: Called with the number of frames done.
    """
    import torch

    from ..export.graph import FusedSegmentationGraph
    from ..images.preprocess import resize_labelled_frame
    from ..postprocess.reference import semantic_from_logits
    require_panoptic(manifest)
    height, width = manifest.input_height, manifest.input_width
    graph = FusedSegmentationGraph(network, manifest).to(device).eval()
    samples = []
    with torch.inference_mode():
        for frame in frames:
            image, semantic, instance = resize_labelled_frame(
                np.asarray(frame.image), np.asarray(frame.semantic),
                np.asarray(frame.instance), height, width)
            batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
            heads = graph.heads(batch.to(device=device, dtype=torch.float32))
            predicted, _ = semantic_from_logits(heads['semantic'][0].float().cpu().numpy())
            gt_semantic = semantic.astype(np.uint8)
            samples.append(HeadSample(
                semantic=predicted.astype(np.uint8),
                center=heads['center'][0, 0].float().cpu().numpy(),
                offset=heads['offset'][0].float().cpu().numpy(),
                gt_semantic=gt_semantic,
                gt_panoptic=(gt_semantic.astype(np.int32) * manifest.label_divisor
                             + instance.astype(np.int32))))
            if progress is not None:
                progress(len(samples))
    if not samples:
        raise TuningError('no frames to tune on')
    return samples


def semantic_miou(samples: Sequence[HeadSample], manifest: ModelManifest) -> float:
    """mIoU of the samples' argmax maps: the same for every post-processing setting."""
    from ..evaluation.metrics import ConfusionMatrix
    labels = manifest.label_set
    confusion = ConfusionMatrix(labels.num_classes, ignore_index=labels.void_id)
    for sample in samples:
        confusion.update(sample.semantic, sample.gt_semantic)
    return float(confusion.mean_iou())


def score_settings(samples: Sequence[HeadSample], settings: PostprocessSettings,
                   manifest: ModelManifest, miou: Optional[float] = None) -> TuningScore:
    """mIoU and PQ of ``settings`` over ``samples`` (reference post-processing).

    ``miou``: the samples' ``semantic_miou`` when already known (a search scores many
    settings on the same samples); computed here when None.
    """
    from ..evaluation.metrics import PanopticQuality
    from ..postprocess.reference import panoptic_from_semantic
    labels = manifest.label_set
    quality = PanopticQuality(labels, label_divisor=manifest.label_divisor)
    for sample in samples:
        _, panoptic, _ = panoptic_from_semantic(
            sample.semantic, sample.center, sample.offset, labels.thing_ids,
            labels.num_classes, settings, label_divisor=manifest.label_divisor,
            void_id=labels.void_id)
        quality.update(panoptic, sample.gt_panoptic)
    result = quality.result()
    return TuningScore(pq=float(result.pq), sq=float(result.sq), rq=float(result.rq),
                       pq_things=float(result.pq_things), pq_stuff=float(result.pq_stuff),
                       miou=semantic_miou(samples, manifest) if miou is None else miou)


def tune_postprocess(samples: Sequence[HeadSample], manifest: ModelManifest,
                     search_space: Optional[Dict[str, Sequence]] = None, rounds: int = 2,
                     on_trial: Optional[Callable[[Trial], None]] = None) -> TuningResult:
    """Coordinate search for the settings with the highest PQ on ``samples``.

    Args:
        samples: From ``collect_head_samples``.
        manifest: The model's manifest; its ``postprocess`` is the starting point.
        search_space: Setting name -> values to try (default ``SEARCH_SPACE``); names must
            be fields of ``PostprocessSettings`` other than ``grouping_stride`` and ``top_k``.
        rounds: Passes over all settings (stops early when a pass changes nothing).
        on_trial: Called with each newly scored trial (progress output).

    Returns:
        The baseline, the best trial and every trial.
    """
    space = dict(SEARCH_SPACE if search_space is None else search_space)
    allowed = {f.name for f in dataclasses.fields(PostprocessSettings)} - {
        'grouping_stride', 'top_k'}
    unknown = sorted(set(space) - allowed)
    if unknown:
        raise TuningError(f'cannot search {", ".join(unknown)}; searchable settings: '
                          f'{", ".join(sorted(allowed))}')
    if rounds < 1:
        raise TuningError(f'rounds must be at least 1, got {rounds}')
    if not samples:
        raise TuningError('no frames to tune on')
    scored: Dict[tuple, TuningScore] = {}
    trials: List[Trial] = []
    miou = semantic_miou(samples, manifest)

    def score(settings: PostprocessSettings) -> TuningScore:
        key = dataclasses.astuple(settings)
        if key not in scored:
            scored[key] = score_settings(samples, settings, manifest, miou)
            trials.append(Trial(settings, scored[key]))
            if on_trial is not None:
                on_trial(trials[-1])
        return scored[key]

    baseline = Trial(manifest.postprocess, score(manifest.postprocess))
    best = baseline
    for _ in range(rounds):
        improved = False
        for name, values in space.items():
            current = getattr(best.settings, name)
            for value in sorted(set(values) | {current}):
                candidate = dataclasses.replace(best.settings, **{name: value})
                candidate_score = score(candidate)
                if candidate_score.pq > best.score.pq + MIN_GAIN:
                    best = Trial(candidate, candidate_score)
                    improved = True
        if not improved:
            break
    return TuningResult(baseline=baseline, best=best, trials=trials, frames=len(samples))
