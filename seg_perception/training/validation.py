"""Validation during training, through the same ``FusedSegmentationGraph`` that export and
the torch backend use, so the numbers logged are those of the exported model,
post-processing included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from ..labels import LabelSet
from ..manifest import ModelManifest, PostprocessSettings
from .config import TrainConfig


def make_manifest(config: TrainConfig, label_set: LabelSet) -> ModelManifest:
    """The manifest of the package a run exports (default post-processing settings)."""
    return ModelManifest(name=f'{config.model}_{config.task}', architecture=config.model,
                         task=config.task, input_height=config.height, input_width=config.width,
                         label_set=label_set, postprocess=PostprocessSettings())


@dataclass
class ValidationResult:
    """Metrics of the exported graph (post-processing included) on held-out frames."""

    miou: float
    pq: float
    pq_things: float
    pq_stuff: float
    per_class_iou: Dict[str, Optional[float]]
    frames: int


def validate(network, manifest: ModelManifest, source: Sequence, device: str,
             batch_size: int = 4) -> ValidationResult:
    """Run ``FusedSegmentationGraph`` (the export / torch-backend path) over ``source``.

    ``source`` is any sequence of frames with ``image`` (H,W,3) uint8, ``semantic`` (H,W) and
    ``instance`` (H,W) at the network size.
    """
    import torch

    from ..evaluation.metrics import ConfusionMatrix, PanopticQuality
    from ..export.graph import FusedSegmentationGraph
    from ..postprocess.components import (
        instances_from_connected_components,
        panoptic_from_semantic_and_instance,
    )
    labels = manifest.label_set
    confusion = ConfusionMatrix(labels.num_classes, ignore_index=labels.void_id)
    quality = PanopticQuality(labels, label_divisor=manifest.label_divisor)
    was_training = network.training
    network.eval()
    graph = FusedSegmentationGraph(network, manifest).to(device).eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(source), batch_size):
                frames = [source[i] for i in range(start, min(start + batch_size, len(source)))]
                images = np.stack([f.image.transpose(2, 0, 1) for f in frames])
                tensor = torch.from_numpy(images).to(device=device, dtype=torch.float32)
                outputs = dict(zip(manifest.output_names, graph(tensor)))
                semantic = outputs['semantic'].cpu().numpy()
                panoptic = outputs['panoptic'].cpu().numpy() if 'panoptic' in outputs else None
                for k, frame in enumerate(frames):
                    confusion.update(semantic[k], frame.semantic)
                    if panoptic is not None:
                        predicted = panoptic[k]
                    else:
                        instance = instances_from_connected_components(
                            semantic[k], labels.thing_ids)
                        predicted = panoptic_from_semantic_and_instance(
                            semantic[k], instance, manifest.label_divisor, labels.void_id)
                    gt = frame.semantic.astype(np.int32) * manifest.label_divisor + frame.instance
                    quality.update(predicted, gt)
    finally:
        network.train(was_training)
    result = quality.result()
    iou = confusion.iou()
    return ValidationResult(
        miou=float(confusion.mean_iou()), pq=float(result.pq), pq_things=float(result.pq_things),
        pq_stuff=float(result.pq_stuff),
        per_class_iou={name: (None if np.isnan(v) else round(float(v), 4))
                       for name, v in zip(labels.names, iou)},
        frames=len(source))
