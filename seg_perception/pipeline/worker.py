"""The node's single inference thread, without ROS.

It takes the newest frame of each camera from a ``LatestFrameStore``, runs the one
``Segmenter`` (all cameras in one batch with ``batch_cameras``, else camera by camera),
renders the outputs someone wants, and hands them to a ``deliver`` callback (the node
publishes them). Frames that fail are reported through ``on_error`` and skipped; the
thread keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass
import queue
import threading
from typing import Any, Callable, List, Optional

import numpy as np

from ..images.visualize import overlay, PanopticColorizer, semantic_color
from ..segmenter import SegmentationResult, Segmenter
from .config import NodeConfig
from .latest_frame import LatestFrameStore
from .outputs import drop_small_instances


@dataclass
class Frame:
    """One decoded camera image waiting for inference.

    Attributes:
        camera: Camera namespace it came from.
        image: uint8 (H, W, 3) RGB (may be a read-only view of the message buffer).
        header: The message header, copied to every output (opaque here).
        received: ``time.monotonic()`` when the subscription callback got it.
    """

    camera: str
    image: np.ndarray
    header: Any
    received: float


@dataclass
class FrameOutputs:
    """What one frame produced; None for outputs nobody wants.

    Attributes:
        semantic: uint8 (h, w) train ids.
        confidence: float32 (h, w).
        instance: int32 (h, w), or uint16 when the node publishes mono16.
        panoptic: int32 (h, w).
        semantic_color, overlay, panoptic_color: uint8 (h, w, 3) RGB.
        result: The full ``SegmentationResult`` (segments for detections, timing).
        output_hw: (h, w) of the maps.
    """

    result: SegmentationResult
    output_hw: tuple
    semantic: Optional[np.ndarray] = None
    confidence: Optional[np.ndarray] = None
    instance: Optional[np.ndarray] = None
    panoptic: Optional[np.ndarray] = None
    semantic_color: Optional[np.ndarray] = None
    overlay: Optional[np.ndarray] = None
    panoptic_color: Optional[np.ndarray] = None


Wants = Callable[[str, str], bool]
Deliver = Callable[[Frame, FrameOutputs], None]
OnError = Callable[[str, str], None]


def render_outputs(frame: Frame, result: SegmentationResult, config: NodeConfig,
                   segmenter: Segmenter, wants: Wants,
                   colorizer: Optional[PanopticColorizer] = None) -> FrameOutputs:
    """Apply run-time filters and build the wanted output arrays of one frame.

    Args:
        frame: The input frame (its image is used for the overlay).
        result: The Segmenter's result for ``frame.image``.
        config: Current node configuration (min_instance_area, overlay_alpha, encodings).
        segmenter: For the label set and network size.
        wants: ``wants(camera, output)`` -> whether to compute that output now.
        colorizer: Reused panoptic colour table (built here per call when None).
    """
    result = drop_small_instances(result, config.min_instance_area, segmenter.network_size)
    labels = segmenter.manifest.label_set
    camera = frame.camera
    outputs = FrameOutputs(result=result, output_hw=tuple(result.output_size))
    if wants(camera, 'semantic'):
        outputs.semantic = result.semantic
    if wants(camera, 'confidence'):
        outputs.confidence = result.confidence.astype(np.float32, copy=False)
    if wants(camera, 'instance'):
        outputs.instance = result.instance.astype(
            np.uint16 if config.instance_encoding == 'mono16' else np.int32, copy=False)
    if wants(camera, 'panoptic'):
        outputs.panoptic = result.panoptic
    want_overlay = wants(camera, 'overlay')
    if wants(camera, 'semantic_color') or want_overlay:
        colors = semantic_color(result.semantic, labels)
        outputs.semantic_color = colors if wants(camera, 'semantic_color') else None
        if want_overlay:
            outputs.overlay = overlay(_image_at(frame.image, outputs.output_hw), colors,
                                      config.overlay_alpha)
    if wants(camera, 'panoptic_color'):
        if colorizer is None or colorizer.label_divisor != result.label_divisor:
            colorizer = PanopticColorizer(labels, result.label_divisor)
        outputs.panoptic_color = colorizer(result.panoptic)
    return outputs


def _image_at(image: np.ndarray, output_hw: tuple) -> np.ndarray:
    if tuple(image.shape[:2]) == tuple(output_hw):
        return image
    import cv2
    return cv2.resize(np.ascontiguousarray(image), (output_hw[1], output_hw[0]),
                      interpolation=cv2.INTER_AREA)


class InferenceWorker:
    """One thread that segments the newest frames and delivers their outputs.

    Args:
        segmenter: The one Segmenter (used from this thread only).
        store: Newest-frame store the subscriptions fill.
        get_config: Returns the current ``NodeConfig`` (read once per inference round, so
            run-time changes take effect on the next frame).
        wants: Which outputs to compute for a camera right now.
        deliver: Called with each frame and its outputs (publishing happens here).
        on_error: Called with (camera, reason) when segmenting or delivering a frame fails.
        pipelined: Render and deliver in a second thread while the next round's inference
            runs (where inference is fast, e.g. TensorRT, publishing full-size images would
            otherwise halve the frame rate). At most one round is being delivered at a time:
            the next round's outputs wait for it, so nothing queues up.
    """

    def __init__(self, segmenter: Segmenter, store: LatestFrameStore,
                 get_config: Callable[[], NodeConfig], wants: Wants, deliver: Deliver,
                 on_error: OnError, pipelined: bool = False) -> None:
        self._segmenter = segmenter
        self._store = store
        self._get_config = get_config
        self._wants = wants
        self._deliver = deliver
        self._on_error = on_error
        self._colorizer = PanopticColorizer(segmenter.manifest.label_set,
                                            segmenter.manifest.label_divisor)
        self._pipelined = pipelined
        self._handoff: 'queue.Queue' = queue.Queue()
        self._delivery_idle = threading.Event()
        self._delivery_idle.set()
        self._threads: List[threading.Thread] = []
        self.rounds = 0

    def start(self) -> None:
        if self._threads:
            raise RuntimeError('InferenceWorker already started')
        self._threads.append(threading.Thread(target=self._run, name='seg_inference',
                                              daemon=True))
        if self._pipelined:
            self._threads.append(threading.Thread(target=self._delivery_loop,
                                                  name='seg_delivery', daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Close the store, finish the round in delivery and join the threads.

        Returns:
            True when every thread ended within ``timeout`` (each).
        """
        self._store.close()
        if not self._threads:
            return True
        self._threads[0].join(timeout)
        self._handoff.put(None)
        for thread in self._threads[1:]:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    def _run(self) -> None:
        while not self._store.closed:
            if self._store.wait_for_any(timeout=0.5):
                self.process_pending()

    def process_pending(self) -> int:
        """Segment the frames waiting now (one round).

        Returns:
            How many frames were segmented and handed on (delivered, or queued for the
            delivery thread when pipelined).
        """
        config = self._get_config()
        self.rounds += 1
        if config.batch_cameras:
            frames = list(self._store.take_all().values())
            return self._segment(frames, config) if frames else 0
        delivered = 0
        for camera in self._store.pending():
            frame = self._store.take(camera)
            if frame is not None:
                delivered += self._segment([frame], config)
        return delivered

    def _segment(self, frames: List[Frame], config: NodeConfig) -> int:
        try:
            results = self._segmenter.segment_batch(
                [frame.image for frame in frames], config.output_resolution,
                config.center_threshold_override)
        except Exception as error:  # noqa: BLE001 - one bad round must not kill the node
            for frame in frames:
                self._on_error(frame.camera, f'{type(error).__name__}: {error}')
            return 0
        if not self._pipelined:
            return self._render_and_deliver(frames, results, config)
        self._delivery_idle.wait()
        self._delivery_idle.clear()
        self._handoff.put((frames, results, config))
        return len(frames)

    def _delivery_loop(self) -> None:
        while True:
            item = self._handoff.get()
            if item is None:
                return
            try:
                self._render_and_deliver(*item)
            finally:
                self._delivery_idle.set()

    def _render_and_deliver(self, frames: List[Frame], results: List[SegmentationResult],
                            config: NodeConfig) -> int:
        delivered = 0
        for frame, result in zip(frames, results):
            try:
                outputs = render_outputs(frame, result, config, self._segmenter, self._wants,
                                         self._colorizer)
                self._deliver(frame, outputs)
                delivered += 1
            except Exception as error:  # noqa: BLE001 - keep serving the other cameras
                self._on_error(frame.camera, f'{type(error).__name__}: {error}')
        return delivered
