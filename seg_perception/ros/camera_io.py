"""One camera's share of the node: its subscriptions, publishers, monitor and checks."""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

from rclpy.qos import ReliabilityPolicy

from ..images.raw import ImageDecodeError
from ..pipeline.camera_geometry import size_mismatch
from ..pipeline.camera_monitor import CameraMonitor

WARNING_THROTTLE_S = 5.0


class CameraIO:
    """One camera's subscriptions, publishers and bookkeeping (node-internal).

    Attributes:
        camera: Camera namespace.
        image_subscription: The current image subscription (re-created to follow QoS).
        topic: Image topic as subscribed (relative), or '' before subscribing.
        reliability: Reliability of the current image subscription.
        publishers: Output name -> publisher.
        camera_info: Latest camera_info message, or None (never a reason to reject a frame:
            see ``check_camera_info``).
        camera_info_subscription: Its subscription, or None.
        expected_hw: (height, width) of the camera's first decoded image.
        monitor: The camera's counters.
        last_warning, suppressed_warnings: Warning throttle state (monotonic s, count).
    """

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.image_subscription = None
        self.topic = ''
        self.reliability: Optional[ReliabilityPolicy] = None
        self.publishers: Dict[str, Any] = {}
        self.camera_info = None
        self.camera_info_subscription = None
        self.expected_hw: Optional[Tuple[int, int]] = None
        self.monitor = CameraMonitor()
        self.last_warning: Dict[str, float] = {}
        self.suppressed_warnings: Dict[str, int] = {}
        self._throttle_lock = threading.Lock()

    def check_size(self, image_hw: Tuple[int, int], max_pixels: int = 0,
                   establish: bool = True) -> None:
        """Raise ``ImageDecodeError`` when an image's (height, width) is not acceptable.

        Acceptable: at most ``max_pixels`` pixels (0: no limit), and the size of the
        camera's first decoded image. The camera_info does not take part (REP 104: the image
        size follows from its binning and ROI; a mismatch is only reported).

        Args:
            image_hw: (height, width) of the image, decoded or read from its header.
            max_pixels: The ``max_image_pixels`` parameter.
            establish: Record ``image_hw`` as the camera's size when it has none yet. The
                subscription callback checks headers with False, so that only an image that
                decoded sets the size.
        """
        height, width = image_hw
        if max_pixels and height * width > max_pixels:
            raise ImageDecodeError(
                f'image size {width}x{height} = {height * width} pixels exceeds '
                f'max_image_pixels {max_pixels}')
        expected = self.expected_hw
        if expected is None:
            if establish:
                self.expected_hw = (int(height), int(width))
            return
        if tuple(image_hw) != expected:
            raise ImageDecodeError(
                f"image size {image_hw[1]}x{image_hw[0]} differs from camera {self.camera}'s "
                f'{expected[1]}x{expected[0]} (its first image)')

    def check_camera_info(self, image_hw: Tuple[int, int]) -> Optional[str]:
        """Compare the latest camera_info with an image's size; returns the mismatch or None.

        The result is also recorded in the camera's monitor (shown in diagnostics).
        """
        info = self.camera_info
        note = size_mismatch(info, image_hw) if info is not None else None
        self.monitor.camera_info_checked(note or '')
        return note

    def throttled(self, message: str, now: float, kind: str = 'frame') -> Optional[str]:
        """``message`` to log now, or None within WARNING_THROTTLE_S of the last warning of
        the same kind.

        Args:
            message: The warning.
            now: ``time.monotonic()``.
            kind: Warnings of different kinds (``frame``, ``camera_info``) do not hide each
                other.

        Returns:
            The message, with the number of warnings suppressed since the last one.
        """
        with self._throttle_lock:  # the callback and the inference thread both warn
            if now - self.last_warning.get(kind, -1e9) < WARNING_THROTTLE_S:
                self.suppressed_warnings[kind] = self.suppressed_warnings.get(kind, 0) + 1
                return None
            suppressed = self.suppressed_warnings.get(kind, 0)
            if suppressed:
                message += f' ({suppressed} similar warnings suppressed)'
            self.last_warning[kind], self.suppressed_warnings[kind] = now, 0
        return message
