"""The one inference path: image(s) in, semantic / instance / panoptic maps out.

The node, the bag evaluator, the demo and the benchmark all call ``Segmenter``; there is
no second copy of pre- or post-processing anywhere.

Typical use::

    from . import Segmenter
    segmenter = Segmenter.from_package('models/enet_panoptic')
    result = segmenter.segment(rgb_image)          # uint8 (H, W, 3)
    result.semantic, result.instance, result.panoptic, result.segments

A caller that never reads ``result.confidence`` loads with fewer graph outputs, so the
backend runs a graph without its full-resolution softmax (``outputs=``, see
``Segmenter.from_package``)::

    Segmenter.from_package(path, outputs=('semantic', 'instance', 'panoptic',
                                          'instance_score'))   # result.confidence is None
"""

from __future__ import annotations

from dataclasses import dataclass, field
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .images.preprocess import check_image, Preprocessor, resize_nearest
from .manifest import ModelManifest
from .postprocess.segments import Segment
from .runtime.base import Backend, graph_outputs_for

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
        confidence: float32 (H, W) softmax probability of the chosen class, or None when
            the Segmenter was loaded without the ``confidence`` graph output.
        instance: int32 (H, W) instance id, 0 = no instance.
        panoptic: int32 (H, W) ``class * label_divisor + instance`` (stuff: ``class *
            label_divisor``).
        timing: Per-stage milliseconds.
        input_size: (height, width) of the image given to the Segmenter.
        output_size: (height, width) of the maps above (input or network size).
        label_divisor, thing_ids, void_id: From the manifest, to decode ``panoptic``.
        instance_score: float32 (top_k,) centre score of instance id k+1, or None when the
            instances came from connected components or the Segmenter was loaded without
            the ``instance_score`` graph output.
    """

    semantic: np.ndarray
    confidence: Optional[np.ndarray]
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
        """Segments (id, class, area, bbox, score) of ``panoptic``; computed on first access.

        Scores: the centre score of an instance (``instance_score``), else the segment's
        mean ``confidence``, else 0.
        """
        if self._segments is None:
            from .postprocess.segments import extract_segments
            self._segments = extract_segments(
                self.panoptic, self.thing_ids, self.label_divisor, self.void_id,
                confidence=self.confidence, instance_score=self.instance_score)
        return self._segments


class Segmenter:
    """Runs a model package on RGB images of any size.

    Args:
        backend: A created backend (see ``runtime.select.create_backend``); its
            ``output_names`` must hold ``semantic`` and, for a panoptic graph, ``instance``
            and ``panoptic``.
        manifest: The package's manifest (input size, labels, post-processing settings).

    Attributes:
        backend_reason: Why this backend was chosen (set by ``from_package``).

    Raises:
        ValueError: The backend computes too few outputs for a result.
    """

    def __init__(self, backend: Backend, manifest: ModelManifest) -> None:
        self.backend = backend
        self.manifest = manifest
        self.backend_reason = ''
        missing = [name for name in _required_outputs(manifest)
                   if name not in self.graph_outputs]
        if missing:
            raise ValueError(f'the Segmenter needs graph output(s) {", ".join(missing)} of '
                             f'{manifest.task} model {manifest.name}; the backend computes '
                             f'only {", ".join(self.graph_outputs)}')
        self._preprocessor = Preprocessor(manifest.batch, manifest.input_height,
                                          manifest.input_width)

    @classmethod
    def from_package(cls, path: str, backend: str = 'auto', device: str = 'auto',
                     precision: str = 'auto', outputs: Optional[Sequence[str]] = None,
                     **options) -> 'Segmenter':
        """Load a model package directory and pick its backend (see ``create_backend``).

        Args:
            path: Package directory.
            backend, device, precision, **options: As ``create_backend``.
            outputs: The graph outputs the caller needs (names of the graph contract,
                ``seg_perception.manifest``); None = all. ``semantic`` is always needed,
                and for a panoptic graph ``instance`` and ``panoptic`` too. Leaving out
                ``confidence`` makes ``result.confidence`` None, and the backend runs the
                graph without that output's work (``packages.output_pruning``). A semantic
                graph scores its connected-component instances by mean confidence, so there
                ``instance_score`` keeps ``confidence``.

        Raises:
            ValueError: Unknown output names (the message lists the valid ones), or too few
                for a result; and as ``create_backend``.
        """
        from .packages.loading import load_model_package
        from .runtime.select import create_backend
        manifest, package_dir = load_model_package(path)
        wanted = segmenter_outputs(manifest, outputs)
        if wanted != manifest.output_names:
            options['outputs'] = wanted
        created, reason = create_backend(package_dir, manifest, backend=backend, device=device,
                                         precision=precision, **options)
        try:
            segmenter = cls(created, manifest)
        except ValueError:
            created.close()
            raise
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

    @property
    def graph_outputs(self) -> Tuple[str, ...]:
        """The graph outputs the backend computes (``confidence`` among them unless it was
        loaded without: then ``result.confidence`` is None)."""
        return tuple(getattr(self.backend, 'output_names', self.manifest.output_names))

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
        """Turn one slot of the graph outputs into a result at the requested resolution.

        ``outputs`` holds the backend's ``output_names`` (B, H, W) maps and (B, top_k)
        scores; ``confidence`` and ``instance_score`` may be absent (then None in the
        result).
        """
        manifest = self.manifest
        labels = manifest.label_set
        semantic = outputs['semantic'][slot].astype(np.uint8)
        confidence = outputs.get('confidence')
        instance_score = None
        if manifest.is_panoptic:
            instance = outputs['instance'][slot]
            panoptic = outputs['panoptic'][slot]
            if 'instance_score' in outputs:
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
        target_hw = tuple(int(v) for v in input_hw) if output_resolution == 'input' \
            else self.network_size
        return SegmentationResult(
            semantic=resize_nearest(semantic, target_hw),
            confidence=None if confidence is None else resize_nearest(confidence[slot],
                                                                      target_hw),
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


def _required_outputs(manifest: ModelManifest) -> Tuple[str, ...]:
    """Graph outputs a ``SegmentationResult`` cannot do without."""
    return ('semantic', 'instance', 'panoptic') if manifest.is_panoptic else ('semantic',)


def segmenter_outputs(manifest: ModelManifest,
                      outputs: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The graph outputs to load for a Segmenter asked for ``outputs`` (see
    ``Segmenter.from_package``), in the manifest's order.

    Raises:
        ValueError: Unknown names (the message lists the valid ones), or too few.
    """
    if outputs is None:
        return manifest.output_names
    outputs = list(outputs) if not isinstance(outputs, str) else outputs
    wanted = graph_outputs_for(manifest, outputs)
    if not manifest.is_panoptic and 'instance_score' in outputs:
        wanted = graph_outputs_for(manifest, list(wanted) + ['confidence'])
    missing = [name for name in _required_outputs(manifest) if name not in wanted]
    if missing:
        raise ValueError(f'outputs {list(outputs)} lack {", ".join(missing)}, which the '
                         f'Segmenter of a {manifest.task} model needs; valid: '
                         f'{", ".join(manifest.output_names)}')
    return wanted
