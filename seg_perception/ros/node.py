"""``seg_perception_node``: camera images in, semantic / instance / panoptic images out.

Thin rclpy glue over the ROS-free core: parameters come from ``pipeline.config``, frames go
through ``images`` into a ``LatestFrameStore``, the ``InferenceWorker`` thread runs the
one ``Segmenter`` and this module publishes what it renders. Written against the Humble
API; newer APIs are guarded.

Per camera namespace ``<cam>``::

    in:  <cam>/image_raw (or <cam>/image_raw/compressed), <cam>/camera_info
    out: <cam>/segmentation/<output> for each row of ``pipeline.outputs.OUTPUTS``
    and /diagnostics at 1 Hz. Each output is rendered and published only while it has a
    subscriber; inference runs for every camera frame regardless.

Run: ``ros2 run seg_perception seg_perception_node --ros-args -p model:=enet_panoptic
-p cameras:="[front, rear]"``.
"""

from __future__ import annotations

from dataclasses import replace
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..images.compressed import decode_compressed
from ..images.raw import encode_image, ImageDecodeError, to_rgb8
from ..pipeline.camera_monitor import CameraMonitor
from ..pipeline.config import (
    ConfigError,
    model_is_path,
    NodeConfig,
    PARAMETERS,
    ParameterSpec,
    validate_value,
)
from ..pipeline.diagnostics import build_report, ModelInfo
from ..pipeline.latest_frame import LatestFrameStore
from ..pipeline.outputs import (
    CAMERA_INFO_TYPE,
    detection_boxes,
    DetectionBox,
    DETECTIONS_TYPE,
    FrameOutputs,
    IMAGE_TYPE,
    output_topic,
    OUTPUTS_BY_NAME,
    scale_camera_info,
)
from ..pipeline.worker import Frame, InferenceWorker

NODE_NAME = 'seg_perception'
WARNING_THROTTLE_S = 5.0
QOS_CHECK_PERIOD_S = 0.5


class NodeStartupError(RuntimeError):
    """The node cannot start: a bad parameter, or a missing / corrupt / unrunnable model."""


def _event_callbacks_class():
    try:
        from rclpy.event_handler import SubscriptionEventCallbacks  # Iron and newer
    except ImportError:
        from rclpy.qos_event import SubscriptionEventCallbacks  # Humble
    return SubscriptionEventCallbacks


def _vision_msgs():
    """The vision_msgs message module, or None when it is not installed."""
    try:
        from vision_msgs import msg
    except ImportError:
        return None
    return msg


def _descriptor(spec: ParameterSpec):
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )
    types = {'string': ParameterType.PARAMETER_STRING, 'bool': ParameterType.PARAMETER_BOOL,
             'integer': ParameterType.PARAMETER_INTEGER,
             'double': ParameterType.PARAMETER_DOUBLE,
             'string_array': ParameterType.PARAMETER_STRING_ARRAY}
    # dynamic_typing: a value of the wrong type reaches NodeConfig's validation, whose
    # message names the parameter and the valid values (rclpy's says only "expected '3'").
    descriptor = ParameterDescriptor(name=spec.name, type=types[spec.type_name],
                                     description=spec.description, read_only=spec.read_only,
                                     additional_constraints=spec.constraint_text,
                                     dynamic_typing=True)
    if spec.type_name == 'double' and spec.minimum is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)]
    elif spec.type_name == 'integer' and spec.minimum is not None:
        descriptor.integer_range = [IntegerRange(
            from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    return descriptor


def _reliability_name(policy: ReliabilityPolicy) -> str:
    return 'reliable' if policy == ReliabilityPolicy.RELIABLE else 'best_effort'


class _CameraIO:
    """One camera's subscriptions, publishers and bookkeeping (node-internal)."""

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


class SegmentationNode(Node):
    """The segmentation node; raises ``NodeStartupError`` when it cannot start."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._config = self._declare_parameters()
        self._segmenter = self._load_segmenter(self._config)
        self.engine_only = self._config.build_engine_only
        if self.engine_only:
            self.get_logger().info(
                f'build_engine_only: TensorRT engine ready '
                f'({getattr(self._segmenter.backend, "engine_path", "?")}); exiting')
            return
        self._vision = _vision_msgs() if self._config.publishes('detections') else None
        manifest = self._segmenter.manifest
        info = self._segmenter.backend.info
        self._model_info = ModelInfo(
            model=self._config.model, backend=info.name, device=info.device,
            precision=info.precision, backend_reason=self._segmenter.backend_reason,
            network_size=self._segmenter.network_size, task=manifest.task)
        self._store: LatestFrameStore = LatestFrameStore(self._config.cameras)
        self._cameras: Dict[str, _CameraIO] = {}
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
        self._worker = InferenceWorker(self._segmenter, self._store, lambda: self._config,
                                       self._wants, self._deliver, self._on_inference_error,
                                       pipelined=True)
        self._worker.start()
        self._log_startup()

    # ------------------------------------------------------------------ start-up

    def _declare_parameters(self) -> NodeConfig:
        # Check command-line / params-file values first, so that a bad one is reported in
        # NodeConfig's words (rclpy's range error is long and repeats itself).
        overrides = getattr(self, '_parameter_overrides', {}) or {}
        for spec in PARAMETERS:
            if spec.name in overrides:
                try:
                    validate_value(spec.name, _plain(overrides[spec.name].value))
                except ConfigError as error:
                    raise NodeStartupError(str(error)) from None
        values = {}
        for spec in PARAMETERS:
            default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
            try:
                parameter = self.declare_parameter(spec.name, default, _descriptor(spec))
            except Exception as error:  # noqa: BLE001 - rclpy raises several types here
                valid = f'; valid: {spec.constraint_text}' if spec.constraint_text else ''
                raise NodeStartupError(
                    f'parameter {spec.name}: {type(error).__name__}: {error} (expected a '
                    f'{spec.type_name}{valid})') from None
            values[spec.name] = _plain(parameter.value)
        try:
            return NodeConfig.from_values(values)
        except ConfigError as error:
            raise NodeStartupError(str(error)) from None

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

    def _setup_camera(self, camera: str) -> _CameraIO:
        from sensor_msgs.msg import CameraInfo, Image
        io = _CameraIO(camera)
        config = self._config
        output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                reliability=ReliabilityPolicy.RELIABLE)
        message_classes = {IMAGE_TYPE: Image, CAMERA_INFO_TYPE: CameraInfo}
        if self._vision is not None:
            message_classes[DETECTIONS_TYPE] = self._vision.Detection2DArray
        for output in config.enabled_outputs:
            message_class = message_classes.get(OUTPUTS_BY_NAME[output].message_type)
            if message_class is not None:
                io.publishers[output] = self.create_publisher(
                    message_class, output_topic(camera, output), output_qos)
        if config.qos_reliability == 'reliable':
            initial = ReliabilityPolicy.RELIABLE
        elif config.qos_reliability == 'best_effort':
            initial = ReliabilityPolicy.BEST_EFFORT
        else:
            # Until a publisher shows up: reliable; a best-effort camera then raises an
            # incompatible-QoS event and the subscription is re-created best effort.
            initial = ReliabilityPolicy.RELIABLE
        self._subscribe_images(io, initial)
        if config.publishes('camera_info'):
            self.create_subscription(
                CameraInfo, f'{camera}/camera_info',
                lambda msg, io=io: setattr(io, 'camera_info', msg),
                QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                           reliability=ReliabilityPolicy.BEST_EFFORT))
        return io

    def _subscribe_images(self, io: _CameraIO, reliability: ReliabilityPolicy) -> None:
        from sensor_msgs.msg import CompressedImage, Image
        if io.image_subscription is not None:
            self.destroy_subscription(io.image_subscription)
        compressed = self._config.input_transport == 'compressed'
        topic = f'{io.camera}/{self._config.image_topic}' + ('/compressed' if compressed else '')
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability,
                         durability=DurabilityPolicy.VOLATILE)
        callbacks = _event_callbacks_class()(
            incompatible_qos=lambda event, io=io: self._on_incompatible_qos(io, event))
        io.topic = topic
        io.image_subscription = self.create_subscription(
            CompressedImage if compressed else Image, topic,
            lambda msg, io=io: self._on_image(io, msg), qos, event_callbacks=callbacks)
        io.reliability = reliability
        io.monitor.set_reliability(_reliability_name(reliability))

    def _topic_of(self, io: _CameraIO) -> str:
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

    def _on_incompatible_qos(self, io: _CameraIO, event: Any) -> None:
        io.monitor.qos_incompatible()
        self._warn(io, f'incompatible QoS on {self._topic_of(io)} (policy '
                       f'{getattr(event, "last_policy_kind", "?")}); subscription is '
                       f'{_reliability_name(io.reliability)}, qos_reliability '
                       f'{self._config.qos_reliability}')

    def _follow_publisher_qos(self) -> None:
        """Re-create an image subscription whose reliability no longer fits its publishers."""
        for io in self._cameras.values():
            infos = self.get_publishers_info_by_topic(self._topic_of(io))
            if not infos:
                continue
            everyone_reliable = all(
                info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in infos)
            wanted = ReliabilityPolicy.RELIABLE if everyone_reliable \
                else ReliabilityPolicy.BEST_EFFORT
            if wanted != io.reliability:
                self.get_logger().info(
                    f'{self._topic_of(io)}: following the camera publisher, '
                    f'subscribing {_reliability_name(wanted)}')
                self._subscribe_images(io, wanted)

    # ------------------------------------------------------------------ input

    def _on_image(self, io: _CameraIO, msg: Any) -> None:
        now = time.monotonic()
        try:
            if self._config.input_transport == 'compressed':
                image = decode_compressed(msg)
            else:
                image = to_rgb8(msg)
            self._check_size(io, image.shape[:2])
        except Exception as error:  # noqa: BLE001 - a bad frame must never stop the node
            reason = str(error) if isinstance(error, ImageDecodeError) \
                else f'{type(error).__name__}: {error}'
            count = io.monitor.frame_rejected(reason)
            self._warn(io, f'rejected image {count} on {self._topic_of(io)}: '
                           f'{reason}')
            return
        io.monitor.frame_received(now)
        self._store.put(io.camera, Frame(io.camera, image, msg.header, now))

    def _check_size(self, io: _CameraIO, image_hw: Tuple[int, int]) -> None:
        info = io.camera_info
        if info is not None and info.width > 0 and info.height > 0:
            expected, source = (int(info.height), int(info.width)), 'its camera_info'
        else:
            expected, source = io.expected_hw, 'its first image'
        if expected is None:
            io.expected_hw = tuple(image_hw)
            return
        if tuple(image_hw) != expected:
            raise ImageDecodeError(
                f"image size {image_hw[1]}x{image_hw[0]} differs from camera {io.camera}'s "
                f'{expected[1]}x{expected[0]} ({source})')

    def _warn(self, io: _CameraIO, message: str) -> None:
        """Log a warning at most once per WARNING_THROTTLE_S per camera."""
        now = time.monotonic()
        if now - io.last_warning < WARNING_THROTTLE_S:
            io.suppressed_warnings += 1
            return
        if io.suppressed_warnings:
            message += f' ({io.suppressed_warnings} similar warnings suppressed)'
        io.last_warning, io.suppressed_warnings = now, 0
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
            info = _copy_camera_info(io.camera_info)
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
            updated = self._config.updated({p.name: _plain(p.value) for p in parameters})
        except ConfigError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._config = updated
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        now = time.monotonic()
        cameras = self._config.cameras
        snapshots = [self._cameras[c].monitor.snapshot(now, self._store.counts(c).dropped)
                     for c in cameras]
        report = build_report(self.get_fully_qualified_name(), self._model_info, cameras,
                              snapshots, self._config.batch_cameras)
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for entry in report:
            array.status.append(DiagnosticStatus(
                level=bytes([entry.level]), name=entry.name, message=entry.message,
                hardware_id=entry.hardware_id,
                values=[KeyValue(key=k, value=v) for k, v in entry.values]))
        self._diagnostics.publish(array)

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


def detection_array(vision: Any, header: Any, boxes: List[DetectionBox]) -> Any:
    """A ``vision_msgs/Detection2DArray`` of ``boxes`` (vision_msgs 3.x and 4.x layouts).

    Args:
        vision: The ``vision_msgs.msg`` module.
        header: Copied to the array and every detection.
        boxes: From ``result_outputs.detection_boxes``.
    """
    array = vision.Detection2DArray(header=header)
    for box in boxes:
        detection = vision.Detection2D(header=header)
        if hasattr(detection, 'id'):  # 4.x
            detection.id = str(box.id)
        center = detection.bbox.center
        point = center.position if hasattr(center, 'position') else center  # 4.x vs 3.x
        point.x, point.y = box.center_x, box.center_y
        detection.bbox.size_x, detection.bbox.size_y = box.width, box.height
        hypothesis = vision.ObjectHypothesisWithPose()
        target = hypothesis.hypothesis if hasattr(hypothesis, 'hypothesis') else hypothesis
        if hasattr(target, 'class_id'):
            target.class_id = box.class_name
        else:
            target.id = box.class_name
        target.score = box.score
        detection.results.append(hypothesis)
        array.detections.append(detection)
    return array


def _plain(value: Any) -> Any:
    """Parameter values as Python scalars / tuples (arrays come as lists or arrays)."""
    if isinstance(value, (list, tuple)) or hasattr(value, 'tolist'):
        return tuple(value)
    return value


def _copy_camera_info(msg: Any) -> Any:
    from sensor_msgs.msg import CameraInfo, RegionOfInterest
    roi = msg.roi
    return CameraInfo(
        height=msg.height, width=msg.width, distortion_model=msg.distortion_model,
        d=list(msg.d), k=list(msg.k), r=list(msg.r), p=list(msg.p),
        binning_x=msg.binning_x, binning_y=msg.binning_y,
        roi=RegionOfInterest(x_offset=roi.x_offset, y_offset=roi.y_offset, height=roi.height,
                             width=roi.width, do_rectify=roi.do_rectify))


def _init_rclpy(args: Optional[List[str]]) -> None:
    try:
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):
        rclpy.init(args=args)


def main(args: Optional[List[str]] = None) -> int:
    """Console script ``seg_perception_node``; returns the exit status.

    Ctrl-C and SIGTERM stop the node cleanly (worker joined, no traceback). A bad parameter
    or an unusable model prints one ``error:`` line and returns 2.
    """
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
