"""The node's single inference thread, without ROS.

It takes the newest frame of each camera from a ``LatestFrameStore``, decodes it (a frame
may arrive undecoded, with a ``decode`` function: only frames that reach inference are ever
decoded, the ones replaced in the store never are), runs the one ``Segmenter`` (all cameras
in one batch where ``batch_cameras`` is in force, else camera by camera: see
``resolve_batch_cameras``), renders the outputs someone
wants (``outputs.render_outputs``), and hands them to a ``deliver`` callback (the node
publishes them). Frames that cannot be decoded are reported through ``on_reject``, frames
that fail later through ``on_error``; both are skipped and the thread keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass
import queue
import threading
from typing import Any, Callable, List, Optional

import numpy as np

from ..images.raw import ImageDecodeError
from ..images.visualize import PanopticColorizer
from ..segmenter import SegmentationResult, Segmenter
from .config import NodeConfig
from .latest_frame import LatestFrameStore
from .outputs import FrameOutputs, render_outputs


@dataclass
class Frame:
    """One camera image waiting for inference.

    Attributes:
        camera: Camera namespace it came from.
        image: uint8 (H, W, 3) RGB (may be a read-only view of the message buffer), or None
            until the worker calls ``decode``.
        header: The message header, copied to every output (opaque here).
        received: ``time.monotonic()`` when the subscription callback got it.
        decode: Returns the (H, W, 3) uint8 RGB image when ``image`` is None; raises
            (``ImageDecodeError`` or anything else) when the frame must be rejected.
    """

    camera: str
    image: Optional[np.ndarray]
    header: Any
    received: float
    decode: Optional[Callable[[], np.ndarray]] = None


@dataclass(frozen=True)
class BatchCameras:
    """What the ``batch_cameras`` setting means for the loaded backend.

    Attributes:
        setting: The parameter value: ``auto``, ``true`` or ``false``.
        enabled: Whether all cameras' newest frames run in one batched inference.
        reason: Why ``auto`` turned batching on or off (empty for ``true`` / ``false``).
    """

    setting: str
    enabled: bool
    reason: str = ''

    @property
    def text(self) -> str:
        """The setting and what is in force, e.g. ``auto (off: CPU backend)``."""
        state = 'on' if self.enabled else 'off'
        return f'{self.setting} ({state}: {self.reason})' if self.reason \
            else f'{self.setting} ({state})'


def resolve_batch_cameras(setting: str, segmenter: Segmenter) -> BatchCameras:
    """Whether to batch the cameras with ``segmenter``'s loaded backend.

    ``true`` and ``false`` are obeyed. ``auto`` batches only on a GPU (TensorRT, torch on
    CUDA, ONNX Runtime with the CUDA / TensorRT execution provider: the backend's
    ``info.device`` is ``cuda:N``) and only when the graph's static batch is above 1: there a
    batch fills the device for about the cost of one frame. A CPU backend's cost is linear in
    pixels, so a batch of N cameras gives no throughput and makes every camera wait for all N
    (measured: 4 cameras p50 541 ms batched vs 178 ms one at a time); a batch-1 graph runs
    the batch as N calls one after another, with the same effect.
    """
    if setting in ('true', 'false'):
        return BatchCameras(setting, setting == 'true')
    if setting != 'auto':
        raise ValueError(f'batch_cameras {setting!r} is not one of auto, true, false')
    info = segmenter.backend.info
    if not info.device.startswith('cuda'):
        return BatchCameras(setting, False, 'CPU backend')
    batch = segmenter.backend.batch_size
    if batch < 2:
        return BatchCameras(setting, False, f'{info.name} on {info.device}, graph batch 1')
    return BatchCameras(setting, True, f'{info.name} on {info.device}, graph batch {batch}')


Wants = Callable[[str, str], bool]
Deliver = Callable[[Frame, FrameOutputs], None]
OnError = Callable[[str, str], None]


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
        on_reject: Called with (camera, reason) when a frame's ``decode`` raises (default:
            ``on_error``).
        pipelined: Render and deliver in a second thread while the next round's inference
            runs (where inference is fast, e.g. TensorRT, publishing full-size images would
            otherwise halve the frame rate). At most one round is being delivered at a time:
            the next round's outputs wait for it, so nothing queues up.
    """

    def __init__(self, segmenter: Segmenter, store: LatestFrameStore,
                 get_config: Callable[[], NodeConfig], wants: Wants, deliver: Deliver,
                 on_error: OnError, pipelined: bool = False,
                 on_reject: Optional[OnError] = None) -> None:
        self._segmenter = segmenter
        self._store = store
        self._get_config = get_config
        self._wants = wants
        self._deliver = deliver
        self._on_error = on_error
        self._on_reject = on_reject or on_error
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
        if resolve_batch_cameras(config.batch_cameras, self._segmenter).enabled:
            frames = self._decoded(list(self._store.take_all().values()))
            return self._segment(frames, config) if frames else 0
        delivered = 0
        for camera in self._store.pending():
            frames = self._decoded([self._store.take(camera)])
            if frames:
                delivered += self._segment(frames, config)
        return delivered

    def _decoded(self, frames: List[Optional[Frame]]) -> List[Frame]:
        """``frames`` with their images decoded; those that cannot be are reported and left
        out."""
        ready = []
        for frame in frames:
            if frame is None:
                continue
            if frame.image is None:
                try:
                    frame.image = frame.decode()
                except Exception as error:  # noqa: BLE001 - a bad frame must not stop the node
                    reason = str(error) if isinstance(error, ImageDecodeError) \
                        else f'{type(error).__name__}: {error}'
                    self._on_reject(frame.camera, reason)
                    continue
                frame.decode = None  # let go of the message
            ready.append(frame)
        return ready

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
                outputs = render_outputs(
                    frame.image, result, config.render_settings,
                    self._segmenter.manifest.label_set, self._segmenter.network_size,
                    lambda output, camera=frame.camera: self._wants(camera, output),
                    self._colorizer)
                self._deliver(frame, outputs)
                delivered += 1
            except Exception as error:  # noqa: BLE001 - keep serving the other cameras
                self._on_error(frame.camera, f'{type(error).__name__}: {error}')
        return delivered
