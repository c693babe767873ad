"""Score a model on held-out synthetic frames through the one ``Segmenter`` path.

Used for the zoo's model cards and by ``seg-perception score``: mIoU, PQ / SQ / RQ and
per-stage latency, on frames of a seed never used for training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import time
from typing import Callable, Dict, Optional

import numpy as np

from ..data.synthetic import SYNTHETIC_TEST_SEED, SYNTHETIC_VALIDATION_SEED


@dataclass
class ScoreReport:
    """Quality and latency of one model on held-out frames.

    Attributes:
        frames: Number of frames scored.
        miou, pq, sq, rq, pq_things, pq_stuff: Accumulated over all frames.
        per_class_iou: Class name -> IoU (None where the class never occurs).
        latency_ms: Median and p90 of each Segmenter stage and of the total.
    """

    frames: int
    miou: float
    pq: float
    sq: float
    rq: float
    pq_things: float
    pq_stuff: float
    per_class_iou: Dict[str, Optional[float]] = field(default_factory=dict)
    latency_ms: Dict[str, float] = field(default_factory=dict)


def score_synthetic(segmenter, frames: int = 200, seed: int = SYNTHETIC_TEST_SEED,
                    width: Optional[int] = None, height: Optional[int] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> ScoreReport:
    """Segment ``frames`` synthetic frames of ``seed`` and score them against ground truth.

    Frames are generated at ``width`` x ``height`` (default: the network size) and results
    are compared at that input resolution.
    """
    from ..data.synthetic.generator import SceneGenerator
    from .metrics import ConfusionMatrix, PanopticQuality
    if seed == SYNTHETIC_VALIDATION_SEED:
        raise ValueError('the validation seed was used to select checkpoints; score on another')
    manifest = segmenter.manifest
    labels = manifest.label_set
    network_height, network_width = segmenter.network_size
    generator = SceneGenerator(width=width or network_width, height=height or network_height,
                               seed=seed)
    confusion = ConfusionMatrix(labels.num_classes, ignore_index=labels.void_id)
    quality = PanopticQuality(labels, label_divisor=manifest.label_divisor)
    stages: Dict[str, list] = {'preprocess': [], 'inference': [], 'postprocess': [],
                               'total': []}
    for index in range(frames):
        frame = generator.generate(index)
        started = time.perf_counter()
        result = segmenter.segment(frame.image)
        stages['total'].append((time.perf_counter() - started) * 1000.0)
        stages['preprocess'].append(result.timing.preprocess_ms)
        stages['inference'].append(result.timing.inference_ms)
        stages['postprocess'].append(result.timing.postprocess_ms)
        confusion.update(result.semantic, frame.semantic)
        quality.update(result.panoptic, frame.panoptic)
        if progress is not None:
            progress(index + 1, frames)
    panoptic = quality.result()
    latency = {}
    for stage, values in stages.items():
        latency[f'{stage}_p50'] = round(float(np.percentile(values, 50)), 2)
        latency[f'{stage}_p90'] = round(float(np.percentile(values, 90)), 2)
    return ScoreReport(
        frames=frames, miou=float(confusion.mean_iou()), pq=float(panoptic.pq),
        sq=float(panoptic.sq), rq=float(panoptic.rq), pq_things=float(panoptic.pq_things),
        pq_stuff=float(panoptic.pq_stuff),
        per_class_iou={name: (None if np.isnan(v) else round(float(v), 4))
                       for name, v in zip(labels.names, confusion.iou())},
        latency_ms=latency)
