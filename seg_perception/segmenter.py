"""The one inference path: image(s) in, semantic / instance / panoptic maps out.

The node, the bag evaluator, the demo and the benchmark all call ``Segmenter``; there is
no second copy of pre- or post-processing anywhere.

Typical use::

    from . import Segmenter
    segmenter = Segmenter.from_package('models/enet_panoptic')
    result = segmenter.segment(rgb_image)          # uint8 (H, W, 3)
    result.semantic, result.instance, result.panoptic, result.segments
"""

from __future__ import annotations

from dataclasses import dataclass, field
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .images.preprocess import check_image, Preprocessor, resize_nearest
from .manifest import ModelManifest
from .postprocess.segments import Segment
from .runtime.base import Backend

OUTPUT_RESOLUTION_CHOICES = ('input', 'network')

__all__ = ['Segment', 'SegmentationResult', 'SegmentationTiming', 'Segmenter']


@dataclass
class SegmentationTiming:
    """Wall-clock milliseconds of one frame's stages.

    For ``segment_batch`` the preprocess and inference times are those of the whole
    backend batch the frame was packed into (the backend runs the batch in one call).
    """

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


@dataclass
class SegmentationResult:
    """Segmentation of one image.

    Attributes:
        semantic: uint8 (H, W) train ids (``void_id`` where unlabelled).
        confidence: float32 (H, W) softmax probability of the chosen class.
        instance: int32 (H, W) instance id, 0 = no instance.
        panoptic: int32 (H, W) ``class * label_divisor + instance`` (stuff: ``class *
            label_divisor``).
        timing: Per-stage milliseconds.
        input_size: (height, width) of the image given to the Segmenter.
        output_size: (height, width) of the maps above (input or network size).
        label_divisor, thing_ids, void_id: From the manifest, to decode ``panoptic``.
        instance_score: float32 (top_k,) centre score of instance id k+1, or None when the
            instances came from connected components.
    """

    semantic: np.ndarray
    confidence: np.ndarray
    instance: np.ndarray
    panoptic: np.ndarray
    timing: SegmentationTiming
    input_size: Tuple[int, int]
    output_size: Tuple[int, int]
    label_divisor: int = 1000
    thing_ids: Tuple[int, ...] = ()
    void_id: int = 255
    instance_score: Optional[np.ndarray] = None
    _segments: Optional[List[Segment]] = field(default=None, repr=False, compare=False)

    @property
    def segments(self) -> List[Segment]:
        """Segments (id, class, area, bbox, score) of ``panoptic``; computed on first access."""
        if self._segments is None:
            from .postprocess.segments import extract_segments
            self._segments = extract_segments(
                self.panoptic, self.thing_ids, self.label_divisor, self.void_id,
                confidence=self.confidence, instance_score=self.instance_score)
        return self._segments


class Segmenter:
    """Runs a model package on RGB images of any size.

    Args:
        backend: A created backend (see ``runtime.select.create_backend``).
        manifest: The package's manifest (input size, labels, post-processing settings).

    Attributes:
        backend_reason: Why this backend was chosen (set by ``from_package``).
    """

    def __init__(self, backend: Backend, manifest: ModelManifest) -> None:
        self.backend = backend
        self.manifest = manifest
        self.backend_reason = ''
        self._preprocessor = Preprocessor(manifest.batch, manifest.input_height,
                                          manifest.input_width)

    @classmethod
    def from_package(cls, path: str, backend: str = 'auto', device: str = 'auto',
                     precision: str = 'auto', **options) -> 'Segmenter':
        """Load a model package directory and pick its backend (see ``create_backend``)."""
        from .packages.loading import load_model_package
        from .runtime.select import create_backend
        manifest, package_dir = load_model_package(path)
        created, reason = create_backend(package_dir, manifest, backend=backend, device=device,
                                         precision=precision, **options)
        segmenter = cls(created, manifest)
        segmenter.backend_reason = reason
        return segmenter

    @classmethod
    def from_zoo(cls, name: str, backend: str = 'auto', device: str = 'auto',
                 precision: str = 'auto', **options) -> 'Segmenter':
        """Load a shipped zoo model by name (``seg-perception models`` lists them).

        Raises:
            ValueError: This installation has no model zoo, or ``name`` is not in it.
        """
        try:
            from .packages.zoo import resolve_zoo_model
        except ImportError:
            raise ValueError(
                f'cannot load zoo model {name!r}: this installation ships no model zoo '
                '(seg_perception.packages.zoo is missing); use Segmenter.from_package(DIR) '
                'with an exported package') from None
        path = resolve_zoo_model(name)
        return cls.from_package(path, backend=backend, device=device, precision=precision,
                                **options)

    @property
    def network_size(self) -> Tuple[int, int]:
        """(height, width) of the network input."""
        return self.manifest.input_height, self.manifest.input_width

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> 'Segmenter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def segment(self, image: np.ndarray, output_resolution: str = 'input',
                center_threshold: Optional[float] = None) -> SegmentationResult:
        """Segment one RGB uint8 (H, W, 3) image.

        Args:
            image: RGB uint8 (H, W, 3), any size.
            output_resolution: ``input`` maps the outputs back to (H, W) by nearest
                neighbour; ``network`` leaves them at the network size.
            center_threshold: Instance centre threshold; None = the manifest's setting.
        """
        return self.segment_batch([image], output_resolution, center_threshold)[0]

    def segment_batch(self, images: Sequence[np.ndarray], output_resolution: str = 'input',
                      center_threshold: Optional[float] = None) -> List[SegmentationResult]:
        """Segment several images (e.g. one per camera), packed into the graph's batch B.

        The images may have different sizes. They are run in chunks of B; the last chunk
        is padded with zero images whose outputs are discarded.
        """
        if output_resolution not in OUTPUT_RESOLUTION_CHOICES:
            raise ValueError(
                f'output_resolution {output_resolution!r} is not one of '
                f'{", ".join(OUTPUT_RESOLUTION_CHOICES)}')
        threshold = self._center_threshold(center_threshold)
        if isinstance(images, np.ndarray):
            raise ValueError('segment_batch takes a sequence of (H, W, 3) images, not one '
                             'array; use segment() for a single image')
        images = list(images)
        if not images:
            raise ValueError('segment_batch needs at least one image')
        for index, image in enumerate(images):
            check_image(image, name=f'image {index}' if len(images) > 1 else 'image')
        batch = self._preprocessor.batch_size
        results: List[SegmentationResult] = []
        for start in range(0, len(images), batch):
            results.extend(self._run_chunk(images[start:start + batch], output_resolution,
                                           threshold))
        return results

    def _center_threshold(self, center_threshold: Optional[float]) -> float:
        if center_threshold is None:
            return float(self.manifest.postprocess.center_threshold)
        value = float(center_threshold)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f'center_threshold must be in [0, 1], got {center_threshold!r}')
        return value

    def _run_chunk(self, images: List[np.ndarray], output_resolution: str,
                   threshold: float) -> List[SegmentationResult]:
        start = time.perf_counter()
        preprocessor = self._preprocessor
        for slot, image in enumerate(images):
            preprocessor.load(slot, image)
        for slot in range(len(images), preprocessor.batch_size):
            preprocessor.clear(slot)
        after_preprocess = time.perf_counter()
        outputs = self.backend.run(preprocessor.buffer, threshold)
        after_inference = time.perf_counter()
        preprocess_ms = (after_preprocess - start) * 1e3
        inference_ms = (after_inference - after_preprocess) * 1e3
        results = []
        for slot, image in enumerate(images):
            post_start = time.perf_counter()
            result = self._finish(outputs, slot, image.shape[:2], output_resolution)
            result.timing = SegmentationTiming(
                preprocess_ms, inference_ms, (time.perf_counter() - post_start) * 1e3)
            results.append(result)
        return results

    def _finish(self, outputs: Dict[str, np.ndarray], slot: int, input_hw: Tuple[int, int],
                output_resolution: str) -> SegmentationResult:
        """Turn one slot of the graph outputs into a result at the requested resolution."""
        manifest = self.manifest
        labels = manifest.label_set
        semantic = outputs['semantic'][slot].astype(np.uint8)
        confidence = outputs['confidence'][slot]
        if manifest.is_panoptic:
            instance = outputs['instance'][slot]
            panoptic = outputs['panoptic'][slot]
            instance_score = outputs['instance_score'][slot]
        else:
            from .postprocess.components import (
                instances_from_connected_components,
                panoptic_from_semantic_and_instance,
            )
            settings = manifest.postprocess
            # Ids capped at top_k, like the panoptic graphs, so they stay below label_divisor.
            instance = instances_from_connected_components(
                semantic, labels.thing_ids, min_area=settings.min_instance_area,
                max_instances=settings.top_k)
            panoptic = panoptic_from_semantic_and_instance(
                semantic, instance, manifest.label_divisor, labels.void_id)
            instance_score = None
        target_hw = tuple(int(v) for v in input_hw) if output_resolution == 'input' \
            else self.network_size
        return SegmentationResult(
            semantic=resize_nearest(semantic, target_hw),
            confidence=resize_nearest(confidence, target_hw),
            instance=resize_nearest(instance, target_hw),
            panoptic=resize_nearest(panoptic, target_hw),
            timing=SegmentationTiming(),
            input_size=tuple(int(v) for v in input_hw),
            output_size=target_hw,
            label_divisor=manifest.label_divisor,
            thing_ids=tuple(labels.thing_ids),
            void_id=labels.void_id,
            instance_score=instance_score,
        )
