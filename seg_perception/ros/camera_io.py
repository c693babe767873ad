"""One camera's share of the node: its subscriptions, publishers, monitor and checks."""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

from rclpy.qos import ReliabilityPolicy

from ..images.raw import ImageDecodeError
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
        camera_info: Latest camera_info message, or None.
        expected_hw: (height, width) of the first decoded image, used while there is no
            camera_info.
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
        self.expected_hw: Optional[Tuple[int, int]] = None
        self.monitor = CameraMonitor()
        self.last_warning = -1e9
        self.suppressed_warnings = 0
        self._throttle_lock = threading.Lock()

    def check_size(self, image_hw: Tuple[int, int], max_pixels: int = 0,
                   establish: bool = True) -> None:
        """Raise ``ImageDecodeError`` when an image's (height, width) is not acceptable.

        Acceptable: at most ``max_pixels`` pixels (0: no limit), and the camera's size: that
        of its camera_info, or else that of its first decoded image.

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
        info = self.camera_info
        if info is not None and info.width > 0 and info.height > 0:
            expected, source = (int(info.height), int(info.width)), 'its camera_info'
        else:
            expected, source = self.expected_hw, 'its first image'
        if expected is None:
            if establish:
                self.expected_hw = (int(height), int(width))
            return
        if tuple(image_hw) != expected:
            raise ImageDecodeError(
                f"image size {image_hw[1]}x{image_hw[0]} differs from camera {self.camera}'s "
                f'{expected[1]}x{expected[0]} ({source})')

    def throttled(self, message: str, now: float) -> Optional[str]:
        """``message`` to log now, or None within WARNING_THROTTLE_S of the last warning.

        Args:
            message: The warning.
            now: ``time.monotonic()``.

        Returns:
            The message, with the number of warnings suppressed since the last one.
        """
        with self._throttle_lock:  # the callback and the inference thread both warn
            if now - self.last_warning < WARNING_THROTTLE_S:
                self.suppressed_warnings += 1
                return None
            if self.suppressed_warnings:
                message += f' ({self.suppressed_warnings} similar warnings suppressed)'
            self.last_warning, self.suppressed_warnings = now, 0
        return message
