"""The demo's ROS side: two synthetic cameras in, every node output recorded to a bag.

``DemoSession`` is an rclpy node (in its own context) that publishes generated frames and
their camera_info at a fixed rate, records every output topic of the node (raw CDR, with
its header, untouched) plus ``/diagnostics`` to an MCAP bag, and scores each panoptic
output against the generated ground truth as it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..bags.bag_io import BagWriter
from ..labels import LabelSet
from ..pipeline.outputs import DEFAULT_OUTPUT_NAMES, output_topic, OUTPUTS_BY_NAME
from ..tools.demo_scoring import CameraScore, SheetRow

SCORED = ('semantic', 'instance', 'panoptic')


@dataclass
class DemoFrame:
    """A generated frame kept for publishing and scoring."""

    image: np.ndarray
    semantic: np.ndarray
    panoptic: np.ndarray


class DemoSession:
    """Publishes ``frames[camera]`` in a loop and records / scores the node's answers.

    Args:
        domain_id: ROS domain to use (the node must run on the same one).
        frames: Camera namespace -> generated frames to cycle through.
        bag_path: Bag directory to create (MCAP).
        label_set, label_divisor: For scoring.
        sheet_rows_per_camera: How many answered frames per camera to keep for the sheet.
    """

    def __init__(self, domain_id: int, frames: Dict[str, Sequence[DemoFrame]], bag_path: str,
                 label_set: LabelSet, label_divisor: int = 1000,
                 sheet_rows_per_camera: int = 2) -> None:
        import rclpy
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        self.cameras = tuple(frames)
        self._frames = frames
        self._lock = threading.Lock()
        self._bag = BagWriter(bag_path, storage='mcap')
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('seg_perception_demo', context=self.context)
        self._publish_group = MutuallyExclusiveCallbackGroup()
        self._record_group = MutuallyExclusiveCallbackGroup()
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.image_publishers = {c: self.node.create_publisher(Image, f'/{c}/image_raw',
                                                                reliable)
                                 for c in self.cameras}
        self._info_publishers = {c: self.node.create_publisher(CameraInfo, f'/{c}/camera_info',
                                                                reliable)
                                 for c in self.cameras}
        self.scores = {c: CameraScore(label_set, label_divisor) for c in self.cameras}
        self.sheet: Dict[str, List[SheetRow]] = {c: [] for c in self.cameras}
        self._sheet_rows = sheet_rows_per_camera
        self._sent: Dict[Tuple[int, int], Tuple[str, int, float]] = {}
        self._pending: Dict[Tuple[str, Tuple[int, int]], Dict[str, np.ndarray]] = {}
        self._next_index = {c: 0 for c in self.cameras}
        self.published = {c: 0 for c in self.cameras}
        self.diagnostics: Dict[str, Dict[str, str]] = {}
        self._output_subscriptions: List[Any] = []
        self._subscribe_outputs(reliable)
        self._timer = None
        self._executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self._executor.add_node(self.node)
        self._stop_spinning = threading.Event()
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    # ------------------------------------------------------------------ setup

    def _subscribe_outputs(self, qos) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo, Image
        for camera in self.cameras:
            for output in DEFAULT_OUTPUT_NAMES:
                msgtype = OUTPUTS_BY_NAME[output].message_type
                topic = '/' + output_topic(camera, output)
                self._bag.add_topic(topic, msgtype)
                message_class = CameraInfo if msgtype.endswith('CameraInfo') else Image
                self._output_subscriptions.append(self.node.create_subscription(
                    message_class, topic,
                    lambda raw, topic=topic, camera=camera, output=output:
                        self._record(topic, camera, output, raw),
                    qos, raw=True, callback_group=self._record_group))
        self._bag.add_topic('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray')
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      lambda raw: self._record_diagnostics(raw), 10, raw=True,
                                      callback_group=self._record_group)

    def _spin(self) -> None:
        try:
            while self.context.ok() and not self._stop_spinning.is_set():
                self._executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - the context was shut down under us
            pass

    def wait_for_node(self, timeout: float, alive) -> bool:
        """Wait until the node's image and camera_info subscriptions match our publishers and
        every recorder subscription here matches the node's output publisher (the node renders
        an output only for matched subscribers, so a late match would lose that topic);
        ``alive()`` False aborts."""
        deadline = time.monotonic() + timeout
        publishers = list(self.image_publishers.values()) + list(self._info_publishers.values())
        while time.monotonic() < deadline and alive():
            if all(p.get_subscription_count() > 0 for p in publishers) \
                    and all(s.get_publisher_count() > 0 for s in self._output_subscriptions):
                time.sleep(0.5)  # matched here; give the node's side a moment to match too
                return True
            time.sleep(0.1)
        return False

    # ------------------------------------------------------------------ publishing

    def start_publishing(self, rate_hz: float) -> None:
        self._timer = self.node.create_timer(1.0 / rate_hz, self._publish_all,
                                             callback_group=self._publish_group)

    def stop_publishing(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self.node.destroy_timer(self._timer)
            self._timer = None

    def _publish_all(self) -> None:
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import Header

        from ..images.raw import encode_image
        for camera in self.cameras:
            frames = self._frames[camera]
            index = self._next_index[camera] % len(frames)
            self._next_index[camera] += 1
            frame = frames[index]
            stamp = self.node.get_clock().now().to_msg()
            header = Header(stamp=stamp, frame_id=f'{camera}_optical')
            height, width = frame.image.shape[:2]
            info = CameraInfo(header=header, height=height, width=width,
                              distortion_model='plumb_bob')
            focal = 0.9 * width
            info.k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
            info.p = [focal, 0.0, width / 2.0, 0.0, 0.0, focal, height / 2.0, 0.0, 0.0, 0.0,
                      1.0, 0.0]
            info.d = [0.0] * 5
            self._info_publishers[camera].publish(info)
            with self._lock:
                self._sent[(stamp.sec, stamp.nanosec)] = (camera, index, time.time())
            self.image_publishers[camera].publish(
                encode_image(frame.image, 'rgb8', header=header, image_msg_type=Image))
            self.published[camera] += 1

    # ------------------------------------------------------------------ recording

    def _record(self, topic: str, camera: str, output: str, raw: bytes) -> None:
        received = time.time()
        self._bag.write_raw(topic, time.time_ns(), raw)
        if output not in SCORED:
            return
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import Image

        from ..images.raw import decode_image
        msg = deserialize_message(raw, Image)
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with self._lock:
            sent = self._sent.get(key)
        if sent is None:
            return
        maps = self._pending.setdefault((camera, key), {})
        maps[output] = np.array(decode_image(msg))
        if output == 'panoptic':
            self.scores[camera].latencies_s.append(received - sent[2])
        if len(maps) == len(SCORED):
            del self._pending[(camera, key)]
            self._score(camera, sent[1], maps)

    def _score(self, camera: str, index: int, maps: Dict[str, np.ndarray]) -> None:
        frame = self._frames[camera][index]
        self.scores[camera].add(maps['semantic'], maps['panoptic'], frame.semantic,
                                frame.panoptic)
        rows = self.sheet[camera]
        if len(rows) < self._sheet_rows and all(row.title != f'{camera} #{index}'
                                                for row in rows):
            rows.append(SheetRow(frame.image, maps['semantic'], maps['instance'],
                                 maps['panoptic'], title=f'{camera} #{index}'))

    def _record_diagnostics(self, raw: bytes) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.serialization import deserialize_message
        self._bag.write_raw('/diagnostics', time.time_ns(), raw)
        array = deserialize_message(raw, DiagnosticArray)
        for status in array.status:
            camera = status.name.rsplit(': ', 1)[-1]
            if camera in self.cameras or camera == 'model':
                self.diagnostics[camera] = {kv.key: kv.value for kv in status.values}

    def diagnostics_for(self, camera: str) -> Optional[Dict[str, str]]:
        return self.diagnostics.get(camera)

    def wait_for_diagnostics(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.diagnostics):
                return True
            time.sleep(0.1)
        return False

    def bag_counts(self) -> Dict[str, int]:
        return dict(self._bag.counts)

    def close(self) -> None:
        """Stop spinning, close the bag (always readable) and the ROS context."""
        self.stop_publishing()
        # Spinning stops and running callbacks finish before the node and context go: a
        # callback that meets a destroyed subscription fails in a task nobody awaits.
        self._stop_spinning.set()
        self._spinner.join(5)
        self._executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
        self._bag.close()
