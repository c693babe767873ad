"""Benchmark of the node against the bare Segmenter on the same frames.

Measures, on one machine:

* ``Segmenter`` time per frame (in-process, no ROS) - the reference. It is loaded with the
  graph outputs the node under test loads (``node_graph_outputs``: the node prunes its graph
  to what its enabled outputs read, without ``confidence`` by default), so both run the
  same graph;
* node end-to-end latency: camera publish -> receipt of the panoptic output, one frame at a
  time, with only the panoptic output subscribed and again with every output subscribed
  (colour and overlay images are rendered only while subscribed);
* throughput and latency with 1 and with N cameras publishing at the same rate, faster
  than the node can segment, for each ``batch_cameras`` setting asked for (the node's
  status says what the setting means on its backend, e.g. ``auto (off: CPU backend)``);
* the node process's peak resident memory (VmHWM).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import subprocess
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..pipeline.outputs import (
    CAMERA_INFO_TYPE,
    DEFAULT_OUTPUT_NAMES,
    output_topic,
    OUTPUTS_BY_NAME,
)
from ..tools.node_process import node_command, start_node, stop_node
from .background_node import BackgroundNode


@dataclass
class CameraLoadRun:
    """Cameras publishing faster than the node segments: what comes out.

    Attributes:
        cameras: Cameras publishing at once (each at the report's ``camera_rate_hz``).
        batch_cameras: The node's setting during the run: ``auto``, ``true`` or ``false``.
        in_force: What the node's status said of it, e.g. ``auto (off: CPU backend)``.
        throughput_fps: Panoptic answers per second, all cameras together.
        latency_p50_ms, latency_p95_ms: Camera publish -> panoptic received, over every
            answer of the run (the age of the frame when the node took it included).
        answers: How many answers that is.
    """

    cameras: int
    batch_cameras: str
    in_force: str
    throughput_fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    answers: int


@dataclass
class NodeBenchmarkReport:
    """Results in milliseconds, frames per second and MiB.

    ``graph_outputs`` are the graph outputs both the node and the Segmenter computed (the
    node's for its parameters of the run, see ``node_graph_outputs``).
    """

    model: str
    backend: str
    image_size: str
    segmenter_ms: float
    node_e2e_ms: float
    overhead_percent: float
    segmenter_all_outputs_ms: float
    node_e2e_all_outputs_ms: float
    overhead_all_outputs_percent: float
    camera_rate_hz: float
    load_runs: List[CameraLoadRun]
    peak_rss_mib: float
    frames: int
    graph_outputs: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def format_node_report(report: NodeBenchmarkReport) -> str:
    """Markdown table for the README."""
    rows = [
        ('Segmenter alone (same frames, in-process)', f'{report.segmenter_ms:.0f} ms'),
        ('node: camera publish -> panoptic received', f'{report.node_e2e_ms:.0f} ms '
         f'({report.overhead_percent:+.1f} % vs Segmenter)'),
        ('Segmenter alone, second round', f'{report.segmenter_all_outputs_ms:.0f} ms'),
        ('node, every output subscribed (colour, overlay...)',
         f'{report.node_e2e_all_outputs_ms:.0f} ms ({report.overhead_all_outputs_percent:+.1f} '
         '% vs Segmenter)'),
        ('node peak RSS', f'{report.peak_rss_mib:.0f} MiB'),
    ]
    lines = [f'model {report.model}, backend {report.backend}, images {report.image_size}, '
             f'medians of {report.frames} frames']
    if report.graph_outputs:
        lines.append('graph outputs computed, by node and Segmenter alike: '
                     + ', '.join(report.graph_outputs))
    lines += ['',
             '| measure | value |', '|---|---|']
    lines += [f'| {name} | {value} |' for name, value in rows]
    lines += ['', f'every camera publishing at {report.camera_rate_hz:.1f} Hz:', '',
              format_load_table(report.load_runs), '']
    lines += [f'- {note}' for note in report.notes]
    return '\n'.join(lines)


def format_load_table(runs: Sequence[CameraLoadRun]) -> str:
    """Markdown table of the load runs; p50 latency also as a ratio to the first one-camera
    run's."""
    single = next((run.latency_p50_ms for run in runs if run.cameras == 1), None)
    lines = ['| cameras | batch_cameras | throughput (all cameras) | latency p50 | '
             'p50 vs one camera | latency p95 |', '|---|---|---|---|---|---|']
    for run in runs:
        ratio = f'{run.latency_p50_ms / single:.2f}x' if single else 'n/a'
        lines.append(f'| {run.cameras} | {run.in_force} | {run.throughput_fps:.2f} fps | '
                     f'{run.latency_p50_ms:.0f} ms | {ratio} | {run.latency_p95_ms:.0f} ms |')
    return '\n'.join(lines)


def node_graph_outputs(parameters: Mapping[str, Any]) -> Tuple[str, ...]:
    """The graph outputs the node loads its Segmenter with, given these parameters.

    Args:
        parameters: The node's parameters (name -> value, the rest take their defaults);
            its ``publish_<output>`` switches decide (``pipeline.graph_outputs``).

    Returns:
        What ``Segmenter.from_package(..., outputs=...)`` gets, e.g.
        ``DEFAULT_GRAPH_OUTPUTS`` with default switches.
    """
    from ..pipeline.config import NodeConfig
    from ..pipeline.graph_outputs import needed_graph_outputs
    return needed_graph_outputs(NodeConfig.from_values(parameters).enabled_outputs)


def _segment_ms(segmenter, image: np.ndarray) -> float:
    start = time.perf_counter()
    segmenter.segment(image)
    return (time.perf_counter() - start) * 1e3


class _Client(BackgroundNode):
    """Publishes camera frames and times the node's panoptic answers (own rclpy context)."""

    def __init__(self, domain_id: int, cameras: Sequence[str]) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        super().__init__('seg_perception_bench', domain_id)
        self.qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.cameras = tuple(cameras)
        self.publishers = {c: self.node.create_publisher(Image, f'/{c}/image_raw', self.qos)
                           for c in self.cameras}
        self._lock = threading.Condition()
        self.arrivals: Dict[str, List[tuple]] = {c: [] for c in self.cameras}
        self._extra: List[Any] = []
        for camera in self.cameras:
            self.node.create_subscription(
                Image, '/' + output_topic(camera, 'panoptic'),
                lambda raw, camera=camera: self._arrived(camera, raw), self.qos, raw=True)
        from diagnostic_msgs.msg import DiagnosticArray
        self.batch_cameras = ''  # the node status's batch_cameras value, when one came
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._diagnostics, 10)
        self.start_spinning()

    def _diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            for pair in status.values:
                if pair.key == 'batch_cameras':
                    with self._lock:
                        self.batch_cameras = pair.value
                        self._lock.notify_all()

    def set_batch_cameras(self, setting: str, timeout: float = 10.0) -> str:
        """Set the node's batch_cameras; returns what its status then says is in force."""
        self.set_parameter('batch_cameras', setting)
        with self._lock:
            self._lock.wait_for(lambda: self.batch_cameras.split(' ')[0] == setting, timeout)
            reported = self.batch_cameras
        return reported if reported.split(' ')[0] == setting else f'{setting} (not reported)'

    def _arrived(self, camera: str, raw: bytes) -> None:
        now = time.time()
        with self._lock:
            self.arrivals[camera].append(header_stamp(raw) + (now,))
            self._lock.notify_all()

    def subscribe_every_output(self, camera: str) -> None:
        from sensor_msgs.msg import CameraInfo, Image
        for output in DEFAULT_OUTPUT_NAMES:
            if output != 'panoptic':
                is_info = OUTPUTS_BY_NAME[output].message_type == CAMERA_INFO_TYPE
                self._extra.append(self.node.create_subscription(
                    CameraInfo if is_info else Image, '/' + output_topic(camera, output),
                    lambda raw: None, self.qos, raw=True))

    def unsubscribe_extra(self) -> None:
        for subscription in self._extra:
            self.node.destroy_subscription(subscription)
        self._extra = []

    def wait_subscribed(self, timeout: float, alive) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            if all(p.get_subscription_count() > 0 for p in self.publishers.values()):
                return True
            time.sleep(0.1)
        return False

    def message(self, image: np.ndarray, camera: str):
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        from ..images.raw import encode_image
        return encode_image(image, 'rgb8', header=Header(frame_id=camera),
                            image_msg_type=Image)

    def round_trip(self, camera: str, msg: Any, timeout: float) -> float:
        """Publish ``msg`` now and wait for its panoptic answer; returns seconds."""
        stamp = self.node.get_clock().now().to_msg()
        msg.header.stamp = stamp
        sent = time.time()
        self.publishers[camera].publish(msg)
        key = (stamp.sec, stamp.nanosec)
        with self._lock:
            answered = self._lock.wait_for(
                lambda: any(a[:2] == key for a in self.arrivals[camera]), timeout)
            if not answered:
                raise TimeoutError(f'no answer from the node within {timeout} s')
            received = next(a[2] for a in self.arrivals[camera] if a[:2] == key)
        return received - sent

    def flood(self, messages: Dict[str, Any], rate_hz: float, seconds: float) -> tuple:
        """Publish every camera at ``rate_hz`` for ``seconds``.

        Returns:
            (answers per second, the latencies of those answers in seconds).
        """
        counts = {c: len(self.arrivals[c]) for c in messages}
        start = time.monotonic()
        period = 1.0 / rate_hz
        next_time = start
        while time.monotonic() - start < seconds:
            for camera, msg in messages.items():
                msg.header.stamp = self.node.get_clock().now().to_msg()
                self.publishers[camera].publish(msg)
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))
        elapsed = time.monotonic() - start
        time.sleep(1.0)  # answers to frames published before the end still count
        with self._lock:
            answers = [a for c in messages for a in self.arrivals[c][counts[c]:]]
        return len(answers) / elapsed, [a[2] - a[0] - a[1] * 1e-9 for a in answers]

    def set_parameter(self, name: str, value: Any) -> None:
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        client = self.node.create_client(SetParameters, '/seg_perception/set_parameters')
        if not client.wait_for_service(timeout_sec=10.0):
            raise TimeoutError('the node has no parameter service')
        future = client.call_async(SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()]))
        deadline = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        result = future.result().results[0] if future.done() else None
        self.node.destroy_client(client)
        if result is None or not result.successful:
            raise RuntimeError(f'setting {name} failed: {getattr(result, "reason", "timeout")}')



def header_stamp(raw: bytes) -> tuple:
    """(sec, nanosec) of a serialized message whose first field is a std_msgs/Header.

    Reads the stamp straight from the CDR bytes (4-byte encapsulation, then int32 sec and
    uint32 nanosec) instead of deserializing a 2 MB image just to time it.
    """
    import struct
    order = '<' if bytes(raw[:2]) == b'\x00\x01' else '>'
    return struct.unpack_from(order + 'iI', bytes(raw[:12]), 4)


def peak_rss_mib(pid: int) -> float:
    with open(f'/proc/{pid}/status', 'r', encoding='utf-8') as stream:
        for line in stream:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError('no VmHWM in /proc status')


def run_node_benchmark(model: str, package: str, images: Sequence[np.ndarray],
                       backend: str = 'onnxruntime', threads: int = 0,
                       domain_id: int = 0, flood_seconds: float = 8.0,
                       log_path: Optional[str] = None,
                       camera_counts: Sequence[int] = (1, 4),
                       batch_settings: Sequence[str] = ('auto', 'true', 'false'),
                       camera_rate_hz: Optional[float] = None) -> NodeBenchmarkReport:
    """Run every measurement (see the module docstring); ``images`` are RGB uint8 frames.

    Args:
        model: Name to report.
        package: Model package directory (or zoo name) given to both Segmenter and node.
        images: Camera frames, all of one size; the first two also warm up.
        backend: Backend for both.
        threads: ONNX Runtime threads for both (0 = default).
        domain_id: ROS domain of the node and the client.
        flood_seconds: Length of each load run.
        log_path: Where the node's output goes (default: discarded).
        camera_counts: Cameras publishing at once in the load runs; one camera is run once
            (with the first setting: batching cannot matter), more with every setting.
        batch_settings: The node's ``batch_cameras`` values (``auto``, ``true``, ``false``).
        camera_rate_hz: Rate of every camera in the load runs; default twice the Segmenter's
            frame rate, so that the node always has a frame waiting.
    """
    cameras = tuple(f'cam{index}' for index in range(max(camera_counts)))
    # The parameters node_command gives the node (its publish_ switches keep their defaults).
    outputs = node_graph_outputs({'model': package, 'backend': backend,
                                  'cameras': list(cameras), 'threads': threads})
    log = open(log_path, 'w', encoding='utf-8') if log_path else subprocess.DEVNULL
    node = start_node(node_command(package, backend, cameras, threads), domain_id, log)
    client = _Client(domain_id, cameras)
    try:
        if not client.wait_subscribed(120.0, lambda: node.poll() is None):
            raise RuntimeError(f'the node did not start (exit status {node.poll()})')
        messages = [client.message(image, 'cam0') for image in images]
        # Segmenter and node take turns on each frame, so a machine whose load drifts
        # (shared cores) slows both alike.
        from ..segmenter import Segmenter
        options = {'threads': threads} if threads > 0 else {}
        with Segmenter.from_package(package, backend=backend, outputs=outputs,
                                    **options) as segmenter:
            graph_outputs = list(segmenter.graph_outputs)
            for image, msg in zip(images[:2], messages[:2]):
                _segment_ms(segmenter, image)
                client.round_trip('cam0', msg, 120.0)
            segmenter_times, e2e, e2e_all = [], [], []
            for image, msg in zip(images, messages):
                segmenter_times.append(_segment_ms(segmenter, image))
                e2e.append(client.round_trip('cam0', msg, 120.0))
            client.subscribe_every_output('cam0')
            time.sleep(1.0)  # let the new subscriptions match before timing
            for image, msg in zip(images, messages):
                segmenter_times.append(_segment_ms(segmenter, image))
                e2e_all.append(client.round_trip('cam0', msg, 120.0))
            client.unsubscribe_extra()
        half = len(images)
        rate = camera_rate_hz or 2.0 * 1e3 / float(np.median(segmenter_times))
        frames = {camera: client.message(images[index % len(images)], camera)
                  for index, camera in enumerate(cameras)}
        runs = []
        for count in camera_counts:
            for setting in batch_settings[:1] if count == 1 else batch_settings:
                in_force = client.set_batch_cameras(setting)
                chosen = {camera: frames[camera] for camera in cameras[:count]}
                fps, latencies = client.flood(chosen, rate, flood_seconds)
                latency_ms = np.asarray(latencies or [float('nan')]) * 1e3
                runs.append(CameraLoadRun(
                    count, setting, in_force, fps, float(np.percentile(latency_ms, 50)),
                    float(np.percentile(latency_ms, 95)), len(latencies)))
        peak = peak_rss_mib(node.pid)
    finally:
        client.close()
        stop_node(node)
        if log is not subprocess.DEVNULL:
            log.close()
    height, width = images[0].shape[:2]
    first, second = np.asarray(segmenter_times[:half]), np.asarray(segmenter_times[half:])
    e2e_ms, e2e_all_ms = np.asarray(e2e) * 1e3, np.asarray(e2e_all) * 1e3
    return NodeBenchmarkReport(
        model=model, backend=backend, image_size=f'{width}x{height}',
        segmenter_ms=float(np.median(first)), node_e2e_ms=float(np.median(e2e_ms)),
        overhead_percent=float(np.median(e2e_ms / first - 1.0) * 100.0),
        segmenter_all_outputs_ms=float(np.median(second)),
        node_e2e_all_outputs_ms=float(np.median(e2e_all_ms)),
        overhead_all_outputs_percent=float(np.median(e2e_all_ms / second - 1.0) * 100.0),
        camera_rate_hz=rate, load_runs=runs, peak_rss_mib=peak, frames=len(images),
        graph_outputs=graph_outputs,
        notes=['load runs: every camera publishes at the same rate for '
               f'{flood_seconds:g} s (default twice the Segmenter rate); throughput counts '
               'the panoptic answers of all cameras, latency is camera publish -> panoptic '
               'received of each answer; end-to-end includes DDS transport both ways',
               'overheads are medians of per-frame ratios, the Segmenter timed on the same '
               'frame just before the node'])
