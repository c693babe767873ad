"""``seg_perception_node``: camera images in, semantic / instance / panoptic images out.

Thin rclpy glue over the ROS-free core: parameters come from ``pipeline.config``; a frame
whose header passes the size checks goes undecoded into a ``LatestFrameStore``; the
``InferenceWorker`` thread decodes the newest frame of each camera (``images``), runs the one
``Segmenter``, and this module publishes what it renders. Written against the Humble
API; newer APIs are guarded.

Per camera namespace ``<cam>``::

    in:  <cam>/image_raw (or <cam>/image_raw/compressed), <cam>/camera_info
    out: <cam>/segmentation/<output> for each row of ``pipeline.outputs.OUTPUTS``
    and /diagnostics at 1 Hz. Each output is rendered and published only while it has a
    subscriber; inference runs for every camera frame regardless.

Run: ``ros2 run seg_perception seg_perception_node --ros-args -p model:=enet_panoptic
-p cameras:="[front, rear]"``.

Helpers of this module: ``parameters`` (declaration from the parameter table), ``qos``
(profiles, following the camera's reliability), ``camera_io`` (per-camera state and checks),
``messages`` (detections, camera_info copies) and ``diagnostics`` (/diagnostics messages).
"""

from __future__ import annotations

from dataclasses import replace
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import rclpy
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy

from ..images.compressed import decode_compressed
from ..images.header_size import declared_size
from ..images.raw import encode_image, ImageDecodeError, to_rgb8
from ..pipeline.config import ConfigError, model_is_path, NodeConfig
from ..pipeline.diagnostics import build_report, ModelInfo
from ..pipeline.latest_frame import LatestFrameStore
from ..pipeline.outputs import (
    CAMERA_INFO_TYPE,
    detection_boxes,
    DETECTIONS_TYPE,
    FrameOutputs,
    IMAGE_TYPE,
    output_topic,
    OUTPUTS_BY_NAME,
    scale_camera_info,
)
from ..pipeline.worker import Frame, InferenceWorker
from .camera_io import CameraIO
from .diagnostics import diagnostic_array
from .messages import copy_camera_info, detection_array, vision_msgs
from .parameters import declare_parameters, NodeStartupError, plain_value
from .qos import (
    camera_info_qos,
    event_callbacks_class,
    image_qos,
    initial_reliability,
    output_qos,
    publishers_reliability,
    reliability_name,
)

NODE_NAME = 'seg_perception'
QOS_CHECK_PERIOD_S = 0.5


class SegmentationNode(Node):
    """The segmentation node; raises ``NodeStartupError`` when it cannot start."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._config = declare_parameters(self)
        self._segmenter = self._load_segmenter(self._config)
        self.engine_only = self._config.build_engine_only
        if self.engine_only:
            self.get_logger().info(
                f'build_engine_only: TensorRT engine ready '
                f'({getattr(self._segmenter.backend, "engine_path", "?")}); exiting')
            return
        self._vision = vision_msgs() if self._config.publishes('detections') else None
        manifest = self._segmenter.manifest
        info = self._segmenter.backend.info
        self._model_info = ModelInfo(
            model=self._config.model, backend=info.name, device=info.device,
            precision=info.precision, backend_reason=self._segmenter.backend_reason,
            network_size=self._segmenter.network_size, task=manifest.task)
        self._store: LatestFrameStore = LatestFrameStore(self._config.cameras)
        self._cameras: Dict[str, CameraIO] = {}
        for camera in self._config.cameras:
            self._cameras[camera] = self._setup_camera(camera)
        from diagnostic_msgs.msg import DiagnosticArray
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diagnostics_timer = self.create_timer(self._config.diagnostics_period,
                                                    self._publish_diagnostics)
        self._qos_timer = None
        if self._config.qos_reliability == 'auto':
            self._qos_timer = self.create_timer(QOS_CHECK_PERIOD_S, self._follow_publisher_qos)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._worker = InferenceWorker(
            self._segmenter, self._store, lambda: self._config, self._wants, self._deliver,
            self._on_inference_error, pipelined=True,
            on_reject=lambda camera, reason: self._reject(self._cameras[camera], reason))
        self._worker.start()
        self._log_startup()

    # ------------------------------------------------------------------ start-up

    def _load_segmenter(self, config: NodeConfig):
        from ..runtime.base import BackendError
        from ..segmenter import Segmenter
        options = {'threads': config.threads} if config.threads > 0 else {}
        options.update(config.engine_options())
        if config.build_engine_only and config.backend == 'auto':
            config = replace(config, backend='tensorrt')  # building needs TensorRT itself
        kwargs = dict(backend=config.backend, device=config.device,
                      precision=config.precision, **options)
        try:
            if model_is_path(config.model) or os.path.isdir(config.model):
                return Segmenter.from_package(config.model, **kwargs)
            return Segmenter.from_zoo(config.model, **kwargs)
        except (ValueError, BackendError, OSError) as error:
            raise NodeStartupError(f'parameter model {config.model!r}: {error}') from None

    def _setup_camera(self, camera: str) -> CameraIO:
        from sensor_msgs.msg import CameraInfo, Image
        io = CameraIO(camera)
        config = self._config
        message_classes = {IMAGE_TYPE: Image, CAMERA_INFO_TYPE: CameraInfo}
        if self._vision is not None:
            message_classes[DETECTIONS_TYPE] = self._vision.Detection2DArray
        for output in config.enabled_outputs:
            message_class = message_classes.get(OUTPUTS_BY_NAME[output].message_type)
            if message_class is not None:
                io.publishers[output] = self.create_publisher(
                    message_class, output_topic(camera, output), output_qos())
        self._subscribe_images(io, initial_reliability(config.qos_reliability))
        if config.publishes('camera_info'):
            self.create_subscription(
                CameraInfo, f'{camera}/camera_info',
                lambda msg, io=io: setattr(io, 'camera_info', msg), camera_info_qos())
        return io

    def _subscribe_images(self, io: CameraIO, reliability: ReliabilityPolicy) -> None:
        from sensor_msgs.msg import CompressedImage, Image
        if io.image_subscription is not None:
            self.destroy_subscription(io.image_subscription)
        compressed = self._config.input_transport == 'compressed'
        topic = f'{io.camera}/{self._config.image_topic}' + ('/compressed' if compressed else '')
        callbacks = event_callbacks_class()(
            incompatible_qos=lambda event, io=io: self._on_incompatible_qos(io, event))
        io.topic = topic
        io.image_subscription = self.create_subscription(
            CompressedImage if compressed else Image, topic,
            lambda msg, io=io: self._on_image(io, msg), image_qos(reliability),
            event_callbacks=callbacks)
        io.reliability = reliability
        io.monitor.set_reliability(reliability_name(reliability))

    def _topic_of(self, io: CameraIO) -> str:
        """Resolved image topic (``Subscription.topic_name`` where rclpy has it)."""
        name = getattr(io.image_subscription, 'topic_name', None)
        if name:
            return name
        from rclpy.expand_topic_name import expand_topic_name
        return expand_topic_name(io.topic, self.get_name(), self.get_namespace())

    def _log_startup(self) -> None:
        info = self._model_info
        inputs = ', '.join(self._topic_of(io) for io in self._cameras.values())
        self.get_logger().info(
            f'model {info.model} ({info.task}, network {info.network_size[1]}x'
            f'{info.network_size[0]}) on {info.backend} {info.device} {info.precision}: '
            f'{info.backend_reason}')
        self.get_logger().info(
            f'inputs: {inputs} (qos_reliability {self._config.qos_reliability}); outputs: '
            f'{", ".join(self._config.enabled_outputs)}; batch_cameras '
            f'{self._config.batch_cameras}')
        if self._config.publishes('detections') and self._vision is None:
            self.get_logger().info('vision_msgs is not installed: no detections output')

    # ------------------------------------------------------------------ QoS

    def _on_incompatible_qos(self, io: CameraIO, event: Any) -> None:
        io.monitor.qos_incompatible()
        self._warn(io, f'incompatible QoS on {self._topic_of(io)} (policy '
                       f'{getattr(event, "last_policy_kind", "?")}); subscription is '
                       f'{reliability_name(io.reliability)}, qos_reliability '
                       f'{self._config.qos_reliability}')

    def _follow_publisher_qos(self) -> None:
        """Re-create an image subscription whose reliability no longer fits its publishers."""
        for io in self._cameras.values():
            infos = self.get_publishers_info_by_topic(self._topic_of(io))
            if not infos:
                continue
            wanted = publishers_reliability(infos)
            if wanted != io.reliability:
                self.get_logger().info(
                    f'{self._topic_of(io)}: following the camera publisher, '
                    f'subscribing {reliability_name(wanted)}')
                self._subscribe_images(io, wanted)

    # ------------------------------------------------------------------ input

    def _on_image(self, io: CameraIO, msg: Any) -> None:
        """Check the frame's declared size and store it undecoded (the worker decodes it)."""
        now = time.monotonic()
        compressed = self._config.input_transport == 'compressed'
        try:
            io.check_size(declared_size(msg, compressed), self._config.max_image_pixels,
                          establish=False)
        except Exception as error:  # noqa: BLE001 - a bad frame must never stop the node
            self._reject(io, str(error) if isinstance(error, ImageDecodeError)
                         else f'{type(error).__name__}: {error}')
            return
        io.monitor.frame_received(now)
        self._store.put(io.camera, Frame(io.camera, None, msg.header, now,
                                         decode=lambda: self._decode(io, msg, compressed)))

    def _decode(self, io: CameraIO, msg: Any, compressed: bool):
        """(H, W, 3) uint8 RGB of a stored frame (inference thread); raises to reject it."""
        image = decode_compressed(msg) if compressed else to_rgb8(msg)
        io.check_size(image.shape[:2], self._config.max_image_pixels)
        return image

    def _reject(self, io: CameraIO, reason: str) -> None:
        """Count a rejected frame (callback or inference thread) and warn, throttled."""
        count = io.monitor.frame_rejected(reason)
        self._warn(io, f'rejected image {count} on {self._topic_of(io)}: {reason}')

    def _warn(self, io: CameraIO, message: str) -> None:
        """Log a warning at most once per ``camera_io.WARNING_THROTTLE_S`` per camera."""
        message = io.throttled(message, time.monotonic())
        if message is not None:
            self.get_logger().warning(message)

    # ------------------------------------------------------------------ output

    def _wants(self, camera: str, output: str) -> bool:
        """Outputs are rendered, encoded and published only while someone subscribes."""
        publisher = self._cameras[camera].publishers.get(output)
        return publisher is not None and publisher.get_subscription_count() > 0

    def _deliver(self, frame: Frame, outputs: FrameOutputs) -> None:
        from sensor_msgs.msg import Image
        io = self._cameras[frame.camera]
        header = frame.header
        for output, array in outputs.images.items():
            io.publishers[output].publish(encode_image(
                array, OUTPUTS_BY_NAME[output].encoding_of(array), header=header,
                image_msg_type=Image))
        if io.camera_info is not None and self._wants(frame.camera, 'camera_info'):
            info = copy_camera_info(io.camera_info)
            info.header = header
            io.publishers['camera_info'].publish(scale_camera_info(info, outputs.output_hw))
        if self._wants(frame.camera, 'detections'):
            io.publishers['detections'].publish(self._detections(header, outputs))
        now = time.monotonic()
        io.monitor.frame_published(now, now - frame.received, outputs.result.timing.total_ms)

    def _detections(self, header: Any, outputs: FrameOutputs) -> Any:
        boxes = detection_boxes(outputs.result, self._segmenter.manifest.label_set.names)
        return detection_array(self._vision, header, boxes)

    def _on_inference_error(self, camera: str, reason: str) -> None:
        io = self._cameras[camera]
        io.monitor.frame_failed(reason)
        self._warn(io, f'segmentation of a {camera} frame failed: {reason}')

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, parameters: List[Any]):
        from rcl_interfaces.msg import SetParametersResult
        try:
            updated = self._config.updated({p.name: plain_value(p.value) for p in parameters})
        except ConfigError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._config = updated
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        cameras = self._config.cameras
        snapshots = [self._cameras[c].monitor.snapshot(now, self._store.counts(c).dropped)
                     for c in cameras]
        report = build_report(self.get_fully_qualified_name(), self._model_info, cameras,
                              snapshots, self._config.batch_cameras)
        self._diagnostics.publish(diagnostic_array(report, self.get_clock().now().to_msg()))

    def camera_snapshot(self, camera: str):
        """Counters of one camera now (for tests and tools running the node in-process)."""
        return self._cameras[camera].monitor.snapshot(time.monotonic(),
                                                      self._store.counts(camera).dropped)

    # ------------------------------------------------------------------ shutdown

    def close(self) -> bool:
        """Stop the worker (joined), release the model and destroy the node.

        Returns:
            True when the worker thread ended in time.
        """
        joined = self._worker.stop(timeout=10.0)
        if joined:
            self._segmenter.close()
        self.destroy_node()
        return joined


def _use_large_data_transport() -> str:
    """Configure this process's Fast DDS participant for large data unless the user chose.

    On Fast DDS's default transports (a 0.5 MB shared-memory segment, small socket buffers)
    a full-size output travels as many fragments and lost ones wait for a repair; with
    config/fastdds_large_data.xml (32 MB segment, 8 MB socket buffers) the node's writes to
    local subscribers stop losing fragments, whatever transport the subscriber uses. Returns
    the line to log.
    """
    from ..tools.demo_setup import use_large_data_profile
    try:
        return 'transport: ' + use_large_data_profile()
    except FileNotFoundError as error:
        return f'transport: Fast DDS defaults ({error})'


def _init_rclpy(args: Optional[List[str]]) -> None:
    try:
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):
        rclpy.init(args=args)


def main(args: Optional[List[str]] = None) -> int:
    """Console script ``seg_perception_node``; returns the exit status.

    Ctrl-C and SIGTERM stop the node cleanly (worker joined, no traceback). A bad parameter
    or an unusable model prints one ``error:`` line and returns 2. Before ROS starts, the
    process's Fast DDS participant is set up for large data (``_use_large_data_transport``).
    """
    transport = _use_large_data_transport()
    _init_rclpy(args)
    stop = threading.Event()

    def request_stop(signum, frame) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            node = SegmentationNode()
        except NodeStartupError as error:
            print(f'seg_perception_node: error: {error}', file=sys.stderr, flush=True)
            return 2
        if node.engine_only:
            node.destroy_node()
            return 0
        node.get_logger().info(transport)
        from rclpy.executors import SingleThreadedExecutor
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            while not stop.is_set() and rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        finally:
            node.get_logger().info('shutting down')
            executor.remove_node(node)
            if not node.close():
                print('seg_perception_node: warning: inference thread did not stop in time',
                      file=sys.stderr)
            executor.shutdown()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
