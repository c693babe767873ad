"""What ``seg_perception_node`` and ``seg_perception_lifecycle_node`` share: the segmentation.

``SegmentationParts`` is mixed into an rclpy ``Node`` (plain node) or ``LifecycleNode``; it
holds no setup of its own, only steps the two nodes call in their own order:

- ``configure_parts(config)``: load the model (and build / verify a TensorRT engine);
- ``start_parts()``: subscribe the cameras, create the output publishers, diagnostics and
  the inference worker;
- ``stop_parts()``: stop the worker (joined) and destroy what ``start_parts`` created;
- ``release_parts()``: release the model.

A frame whose header passes the size checks goes undecoded into a ``LatestFrameStore``; the
``InferenceWorker`` thread decodes the newest frame of each camera, runs the one
``Segmenter``, and ``_deliver`` publishes what it renders.
"""

from __future__ import annotations

from dataclasses import replace
import os
import time
from typing import Any, Dict, List, Optional

from rclpy.qos import ReliabilityPolicy

from ..images.compressed import decode_compressed
from ..images.header_size import declared_size
from ..images.raw import encode_image, ImageDecodeError, to_rgb8
from ..pipeline.camera_geometry import camera_info_topic
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
from ..pipeline.worker import Frame, InferenceWorker, resolve_batch_cameras
from .camera_io import CameraIO
from .diagnostics import diagnostic_array
from .messages import copy_camera_info, detection_array, vision_msgs
from .parameters import NodeStartupError, plain_value, unknown_overrides
from .qos import (
    camera_info_qos,
    event_callbacks_class,
    image_qos,
    initial_reliability,
    output_qos,
    publishers_reliability,
    reliability_name,
)

QOS_CHECK_PERIOD_S = 0.5
#: Seconds between looks at the ROS graph for another node of this node's name.
NAME_CHECK_PERIOD_S = 2.0


class SegmentationParts:
    """The segmentation steps, mixed into an rclpy node class (before the node base)."""

    def _init_parts(self) -> None:
        """Empty state, start-up warnings and the parameter callback (node constructor)."""
        self._config: Optional[NodeConfig] = None
        self._segmenter = None
        self._vision = None
        self._model_info: Optional[ModelInfo] = None
        self._store: Optional[LatestFrameStore] = None
        self._cameras: Dict[str, CameraIO] = {}
        self._worker: Optional[InferenceWorker] = None
        self._part_timers: List[Any] = []
        self._diagnostics = None
        for warning in unknown_overrides(self):
            self.get_logger().warning(warning)
        self._namesakes = 1
        self._name_timer = self.create_timer(NAME_CHECK_PERIOD_S, self._check_unique_name)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ configure

    def configure_parts(self, config: NodeConfig) -> None:
        """Load the model of ``config``; raises ``NodeStartupError`` with the reason."""
        self._config = config
        self._segmenter = _load_segmenter(config)
        if config.build_engine_only:
            return
        self._vision = vision_msgs() if config.publishes('detections') else None
        info = self._segmenter.backend.info
        self._model_info = ModelInfo(
            model=config.model, backend=info.name, device=info.device,
            precision=info.precision, backend_reason=self._segmenter.backend_reason,
            network_size=self._segmenter.network_size, task=self._segmenter.manifest.task)

    def release_parts(self) -> None:
        """Release the model (after ``stop_parts``)."""
        if self._segmenter is not None:
            self._segmenter.close()
        self._segmenter = self._vision = self._model_info = None

    # ------------------------------------------------------------------ start / stop

    def start_parts(self) -> None:
        """Subscribe, create the publishers, diagnostics and the inference worker."""
        config = self._config
        self._store = LatestFrameStore(config.cameras)
        self._cameras = {camera: self._setup_camera(camera) for camera in config.cameras}
        from diagnostic_msgs.msg import DiagnosticArray
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._part_timers = [self.create_timer(config.diagnostics_period,
                                               self._publish_diagnostics)]
        if config.qos_reliability == 'auto':
            self._part_timers.append(self.create_timer(QOS_CHECK_PERIOD_S,
                                                       self._follow_publisher_qos))
        self._worker = InferenceWorker(
            self._segmenter, self._store, lambda: self._config, self._wants, self._deliver,
            self._on_inference_error, pipelined=True,
            on_reject=lambda camera, reason: self._reject(self._cameras[camera], reason))
        self._worker.start()
        self._log_startup()

    def stop_parts(self) -> bool:
        """Stop the worker (joined), then destroy subscriptions, publishers and timers.

        Returns:
            True when the worker thread ended in time (only then may the model be released).
        """
        joined = self._worker.stop(timeout=10.0) if self._worker is not None else True
        self._worker = None
        for timer in self._part_timers:
            self.destroy_timer(timer)
        self._part_timers = []
        for io in self._cameras.values():
            for subscription in (io.image_subscription, io.camera_info_subscription):
                if subscription is not None:
                    self.destroy_subscription(subscription)
            for publisher in io.publishers.values():
                self.destroy_publisher(publisher)
        self._cameras = {}
        if self._diagnostics is not None:
            self.destroy_publisher(self._diagnostics)
            self._diagnostics = None
        return joined

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
            io.camera_info_subscription = self.create_subscription(
                CameraInfo, camera_info_topic(camera, config.image_topic),
                lambda msg, io=io: self._on_camera_info(io, msg), camera_info_qos())
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
            f'{self._batch_cameras_text()}')
        if self._config.publishes('detections') and self._vision is None:
            self.get_logger().info('vision_msgs is not installed: no detections output')

    def _check_unique_name(self) -> None:
        """Warn when another node of the graph has this node's fully qualified name (at
        start-up, or whenever one more appears; a graph query of the local cache)."""
        name, namespace = self.get_name(), self.get_namespace()
        same = [n for n, ns in self.get_node_names_and_namespaces()
                if n == name and ns == namespace]
        if len(same) > self._namesakes:
            self.get_logger().warning(
                f'{len(same)} nodes are named {self.get_fully_qualified_name()}: their '
                'parameters, services and diagnostics are mixed up; give each its own name '
                '(--ros-args -r __node:=<name>) or namespace')
        self._namesakes = max(1, len(same))

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

    def _on_camera_info(self, io: CameraIO, msg: Any) -> None:
        """Keep the camera's camera_info; check it against the camera's size if known."""
        io.camera_info = msg
        if io.expected_hw is not None:
            self._check_camera_info(io, io.expected_hw)

    def _check_camera_info(self, io: CameraIO, image_hw: Any) -> None:
        """Record whether the camera_info fits ``image_hw``; warn (throttled) if not."""
        mismatch = io.check_camera_info(image_hw)
        if mismatch is not None:
            self._warn(io, f'{self._topic_of(io)}: {mismatch}', kind='camera_info')

    def _decode(self, io: CameraIO, msg: Any, compressed: bool):
        """(H, W, 3) uint8 RGB of a stored frame (inference thread); raises to reject it.

        The camera_info is compared with the decoded size here and when it arrives (whichever
        comes second sees the other).
        """
        image = decode_compressed(msg) if compressed else to_rgb8(msg)
        io.check_size(image.shape[:2], self._config.max_image_pixels)
        self._check_camera_info(io, image.shape[:2])
        return image

    def _reject(self, io: CameraIO, reason: str) -> None:
        """Count a rejected frame (callback or inference thread) and warn, throttled."""
        count = io.monitor.frame_rejected(reason)
        self._warn(io, f'rejected image {count} on {self._topic_of(io)}: {reason}')

    def _warn(self, io: CameraIO, message: str, kind: str = 'frame') -> None:
        """Log a warning at most once per ``camera_io.WARNING_THROTTLE_S`` per camera and kind."""
        message = io.throttled(message, time.monotonic(), kind)
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
            boxes = detection_boxes(outputs.result, self._segmenter.manifest.label_set.names)
            io.publishers['detections'].publish(detection_array(self._vision, header, boxes))
        now = time.monotonic()
        io.monitor.frame_published(now, now - frame.received, outputs.result.timing.total_ms)

    def _on_inference_error(self, camera: str, reason: str) -> None:
        io = self._cameras[camera]
        io.monitor.frame_failed(reason)
        self._warn(io, f'segmentation of a {camera} frame failed: {reason}')

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, parameters: List[Any]):
        from rcl_interfaces.msg import SetParametersResult
        if self._config is None:  # not configured (lifecycle): checked on configure
            return SetParametersResult(successful=True)
        try:
            updated = self._config.updated({p.name: plain_value(p.value) for p in parameters})
        except ConfigError as error:
            return SetParametersResult(successful=False, reason=str(error))
        if updated.batch_cameras != self._config.batch_cameras and self._segmenter is not None:
            batching = resolve_batch_cameras(updated.batch_cameras, self._segmenter)
            self.get_logger().info(f'batch_cameras {batching.text}')
        self._config = updated
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        cameras = tuple(self._cameras)
        snapshots = [self._cameras[c].monitor.snapshot(now, self._store.counts(c).dropped)
                     for c in cameras]
        report = build_report(self.get_name(), self._model_info, cameras, snapshots,
                              self._batch_cameras_text(),
                              [self._topic_of(self._cameras[c]) for c in cameras])
        self._diagnostics.publish(diagnostic_array(report, self.get_clock().now().to_msg()))

    def _batch_cameras_text(self) -> str:
        """The batch_cameras setting and what is in force, e.g. ``auto (off: CPU backend)``."""
        return resolve_batch_cameras(self._config.batch_cameras, self._segmenter).text

    def camera_snapshot(self, camera: str):
        """Counters of one camera now (for tests and tools running the node in-process)."""
        return self._cameras[camera].monitor.snapshot(time.monotonic(),
                                                      self._store.counts(camera).dropped)


def _load_segmenter(config: NodeConfig):
    """The ``Segmenter`` of ``config``; raises ``NodeStartupError`` with the reason."""
    from ..pipeline.graph_outputs import needed_graph_outputs
    from ..runtime.base import BackendError
    from ..segmenter import Segmenter
    options = {'threads': config.threads} if config.threads > 0 else {}
    options.update(config.engine_options(), outputs=needed_graph_outputs(config.enabled_outputs))
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
