"""Per-camera counters of the node: rates, latency, rejections (thread-safe, ROS-free).

Subscription callbacks record received and rejected frames, the inference worker records
outputs with their latency. ``snapshot`` gives one consistent view for diagnostics and the
demo's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Optional

from .rate_stats import LatencySummary, LatencyWindow, RateMeter


@dataclass(frozen=True)
class CameraSnapshot:
    """Counters of one camera at one moment.

    Attributes:
        frames_in: Frames whose header passed the checks (taken into the newest-frame slot;
            decoded later, if inference takes them, and rejected then if they cannot be).
        frames_out: Frames segmented and published.
        dropped: Accepted frames replaced by a newer one before inference took them.
        rejected: Frames refused by their header (size, limit) or that could not be decoded.
        failed: Frames whose inference raised (logged, skipped).
        last_rejection: Reason of the latest rejection ('' if none).
        input_hz, output_hz: Rates over the meter window.
        latency: Receipt -> publish latency percentiles.
        inference_ms: Segmenter time of the latest frame.
        incompatible_qos: Incompatible-QoS events seen on the image subscriptions in all.
        qos_unresolved: An incompatible-QoS event came after the subscription was last
            (re)created, i.e. the camera and the node still do not talk.
        reliability: Reliability the image subscription uses now.
        camera_info_note: Why the latest camera_info does not fit the images ('' if it
            does, or there is none).
    """

    frames_in: int
    frames_out: int
    dropped: int
    rejected: int
    failed: int
    last_rejection: str
    input_hz: float
    output_hz: float
    latency: LatencySummary
    inference_ms: Optional[float]
    incompatible_qos: int
    qos_unresolved: bool
    reliability: str
    camera_info_note: str = ''


class CameraMonitor:
    """Collects one camera's counters; every method is safe from any thread."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._input = RateMeter(window_s)
        self._output = RateMeter(window_s)
        self._latency = LatencyWindow()
        self._lock = threading.Lock()
        self._rejected = 0
        self._failed = 0
        self._last_rejection = ''
        self._inference_ms: Optional[float] = None
        self._incompatible_qos = 0
        self._qos_unresolved = False
        self._reliability = ''
        self._camera_info_note = ''

    def frame_received(self, now: float) -> None:
        self._input.record(now)

    def frame_rejected(self, reason: str) -> int:
        """Count a rejected frame; returns the rejection count so far."""
        with self._lock:
            self._rejected += 1
            self._last_rejection = reason
            return self._rejected

    def frame_failed(self, reason: str) -> None:
        with self._lock:
            self._failed += 1
            self._last_rejection = f'inference failed: {reason}'

    def frame_published(self, now: float, latency_s: float, inference_ms: float) -> None:
        self._output.record(now)
        self._latency.record(latency_s)
        with self._lock:
            self._inference_ms = float(inference_ms)

    def camera_info_checked(self, note: str) -> None:
        """The latest camera_info was compared with an image: ``note`` says why it does not
        fit ('' when it does)."""
        with self._lock:
            self._camera_info_note = note

    def qos_incompatible(self) -> None:
        with self._lock:
            self._incompatible_qos += 1
            self._qos_unresolved = True

    def set_reliability(self, reliability: str) -> None:
        """The image subscription was (re)created with ``reliability``."""
        with self._lock:
            self._reliability = reliability
            self._qos_unresolved = False

    def snapshot(self, now: float, dropped: int) -> CameraSnapshot:
        """Counters at ``now``; ``dropped`` comes from the frame store that owns drops."""
        with self._lock:
            rejected, failed = self._rejected, self._failed
            last, inference_ms = self._last_rejection, self._inference_ms
            incompatible, reliability = self._incompatible_qos, self._reliability
            unresolved = self._qos_unresolved
            camera_info_note = self._camera_info_note
        return CameraSnapshot(
            frames_in=self._input.count, frames_out=self._output.count, dropped=dropped,
            rejected=rejected, failed=failed, last_rejection=last,
            input_hz=self._input.rate(now), output_hz=self._output.rate(now),
            latency=self._latency.summary(), inference_ms=inference_ms,
            incompatible_qos=incompatible, qos_unresolved=unresolved, reliability=reliability,
            camera_info_note=camera_info_note)
