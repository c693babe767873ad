"""Delivered / published per output topic: does every frame the node publishes arrive?

``run_delivery_benchmark`` starts the node once per transport with cameras ``cam0..cam3``;
a client process, on that transport, subscribes reliable depth 10 to ``DELIVERY_OUTPUTS``
(every image output on by default) of 1, 2 and 4 cameras and publishes full-size frames on
them, first ``frames`` one at a time (each waits until the node has published it on some
topic), then at ``rate_hz`` for ``flood_seconds`` (the node drops what it cannot segment).
Published is the node's own count (``frames_out`` in /diagnostics); delivered counts the
distinct frames received on each topic within ``GRACE_S`` after the last one was sent.

Transports: ``default`` sets nothing (the node then configures its own participant for large
data), ``large_data`` gives every process config/fastdds_large_data.xml, ``udp`` leaves the
node as in ``default`` and gives the client UDP only (``FASTDDS_BUILTIN_TRANSPORTS=UDPv4``,
Fast DDS >= 2.11), as a subscriber on another machine would have. The client runs in its own
process (``python -m seg_perception.ros.delivery_benchmark``), since Fast DDS reads its
profile once per process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from ..pipeline.outputs import IMAGE_TYPE, output_topic, OUTPUTS
from ..tools.demo_setup import FAST_DDS_TRANSPORT_VARIABLES, large_data_profile_env
from ..tools.node_process import node_command, stop_node
from .background_node import BackgroundNode

#: Every image output the node publishes by default.
DELIVERY_OUTPUTS = tuple(spec.name for spec in OUTPUTS
                         if spec.default and spec.message_type == IMAGE_TYPE)
TRANSPORTS = ('default', 'large_data', 'udp')
CAMERA_COUNTS = (1, 2, 4)
GRACE_S = 4.0  # longer than Fast DDS's 3 s heartbeat period, so late repairs still count
START_TIMEOUT_S = 120.0


@dataclass
class DeliveryRow:
    """One workload on one transport with ``cameras`` cameras.

    Attributes:
        transport: ``default``, ``large_data`` or ``udp`` (module docstring).
        cameras: Cameras publishing at once.
        workload: ``one at a time`` or ``<rate> Hz``.
        sent: Camera frames sent (all cameras).
        published: Frames the node published on each output topic (all cameras).
        delivered: Output name -> frames received by the reliable subscriber (all cameras).
    """

    transport: str
    cameras: int
    workload: str
    sent: int
    published: int
    delivered: Dict[str, int]


def format_delivery_table(rows: Sequence[DeliveryRow]) -> str:
    """Markdown table: delivered/published per output topic."""
    lines = ['| transport | cameras | camera frames | sent | '
             + ' | '.join(f'`{name}`' for name in DELIVERY_OUTPUTS) + ' |',
             '|---|---|---|---|' + '---|' * len(DELIVERY_OUTPUTS)]
    for row in rows:
        cells = ' | '.join(f'{row.delivered.get(name, 0)}/{row.published}'
                           for name in DELIVERY_OUTPUTS)
        lines.append(f'| {row.transport} | {row.cameras} | {row.workload} | {row.sent} | '
                     f'{cells} |')
    return '\n'.join(lines)


def transport_env(transport: str, client: bool,
                  base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Environment of the client (or the node) on ``transport``: none of the user's Fast DDS
    choices, plus what the transport sets (module docstring)."""
    if transport not in TRANSPORTS:
        raise ValueError(f'unknown transport {transport!r}; choose {", ".join(TRANSPORTS)}')
    env = {k: v for k, v in (base or os.environ).items()
           if k not in FAST_DDS_TRANSPORT_VARIABLES}
    if transport == 'large_data':
        env.update(large_data_profile_env())
    elif transport == 'udp' and client:
        env['FASTDDS_BUILTIN_TRANSPORTS'] = 'UDPv4'
    return env


def run_delivery_benchmark(package: str, backend: str = 'onnxruntime', threads: int = 0,
                           width: int = 1024, height: int = 512, domain_id: int = 0,
                           frames: int = 15, rate_hz: float = 30.0,
                           flood_seconds: float = 10.0,
                           transports: Sequence[str] = ('default', 'large_data'),
                           camera_counts: Sequence[int] = CAMERA_COUNTS,
                           log_path: Optional[str] = None,
                           node_env: Optional[Mapping[str, str]] = None) -> List[DeliveryRow]:
    """Measure delivered/published (see the module docstring).

    Args:
        package: Model package directory (or zoo name) for the node.
        backend, threads: The node's backend and ONNX Runtime threads.
        width, height: Camera frame size (rgb8).
        domain_id: ROS domain of the node and the client.
        frames: Frames per camera in the one-at-a-time workload.
        rate_hz, flood_seconds: Camera rate and length of the second workload.
        transports, camera_counts: What to measure.
        log_path: Node output (appended per transport); default discarded.
        node_env: Extra environment for the node (e.g. another ``PYTHONPATH``).
    """
    cameras = tuple(f'cam{index}' for index in range(max(camera_counts)))
    rows: List[DeliveryRow] = []
    for transport in transports:
        env = transport_env(transport, client=True)
        node_environment = dict(transport_env(transport, client=False),
                                ROS_DOMAIN_ID=str(domain_id), **dict(node_env or {}))
        log = open(log_path, 'a', encoding='utf-8') if log_path else subprocess.DEVNULL
        node = subprocess.Popen(node_command(package, backend, cameras, threads),
                                env=node_environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            client = subprocess.run(
                [sys.executable, '-m', __name__, json.dumps({
                    'domain_id': domain_id, 'cameras': cameras, 'counts': list(camera_counts),
                    'frames': frames, 'rate_hz': rate_hz, 'flood_seconds': flood_seconds,
                    'width': width, 'height': height, 'transport': transport})],
                env=dict(env, ROS_DOMAIN_ID=str(domain_id)), stdout=subprocess.PIPE,
                text=True, check=False)
        finally:
            stop_node(node)
            if log is not subprocess.DEVNULL:
                log.close()
        lines = client.stdout.strip().splitlines()
        if client.returncode != 0 or not lines:
            raise RuntimeError(f'delivery client on {transport} failed (exit status '
                               f'{client.returncode})')
        rows += [DeliveryRow(**row) for row in json.loads(lines[-1])]
    return rows


# --------------------------------------------------------------------------- client process


class _Client(BackgroundNode):
    """Publishes frames and records which output frames arrive (own rclpy context)."""

    def __init__(self, domain_id: int, cameras: Sequence[str]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from .node_benchmark import header_stamp
        self._stamp_of = header_stamp
        super().__init__('seg_perception_delivery', domain_id)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publishers = {c: self.node.create_publisher(
            Image, f'/{c}/image_raw', QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
            for c in cameras}
        self._lock = threading.Condition()
        self.received: Dict[Tuple[str, str], Set[tuple]] = {}
        for camera in cameras:
            for output in DELIVERY_OUTPUTS:
                self.received[(camera, output)] = set()
                self.node.create_subscription(
                    Image, '/' + output_topic(camera, output),
                    lambda raw, key=(camera, output): self._arrived(key, raw), qos, raw=True)
        self.frames_out: Dict[str, int] = {}
        self.diagnostics_seen = 0
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._diagnostics, 10)
        self.start_spinning()

    def _arrived(self, key: Tuple[str, str], raw: bytes) -> None:
        with self._lock:
            self.received[key].add(tuple(self._stamp_of(raw)))
            self._lock.notify_all()

    def _diagnostics(self, msg: Any) -> None:
        with self._lock:
            for status in msg.status:
                camera = status.name.rsplit(': ', 1)[-1]
                values = {kv.key: kv.value for kv in status.values}
                if 'frames_out' in values:
                    self.frames_out[camera] = int(values['frames_out'])
            self.diagnostics_seen += 1
            self._lock.notify_all()

    def wait(self, predicate, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    def published(self, cameras: Sequence[str]) -> int:
        """Frames published by the node so far over ``cameras``, from a fresh diagnostics
        message (one generated after this call)."""
        seen = self.diagnostics_seen
        if not self.wait(lambda: self.diagnostics_seen >= seen + 2, 30.0):
            raise TimeoutError('no /diagnostics from the node')
        with self._lock:
            return sum(self.frames_out.get(camera, 0) for camera in cameras)

    def send(self, camera: str, msg: Any) -> tuple:
        stamp = self.node.get_clock().now().to_msg()
        msg.header.stamp = stamp
        self.publishers[camera].publish(msg)
        return camera, (stamp.sec, stamp.nanosec)

    def answered(self, sent: tuple) -> bool:
        camera, stamp = sent
        return any(stamp in self.received[(camera, output)] for output in DELIVERY_OUTPUTS)

    def delivered(self, sent: Sequence[tuple]) -> Dict[str, int]:
        with self._lock:
            return {output: sum(stamp in self.received[(camera, output)]
                                for camera, stamp in sent) for output in DELIVERY_OUTPUTS}



def _camera_frame(height: int, width: int, camera: str) -> Any:
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ..images.raw import encode_image
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)[:height, :width]
    return encode_image(np.ascontiguousarray(image), 'rgb8', header=Header(frame_id=camera),
                        image_msg_type=Image)


def _measure(client: _Client, messages: Dict[str, Any], transport: str, frames: int,
             rate_hz: float, flood_seconds: float) -> List[dict]:
    cameras = list(messages)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(client.received[(c, o)] for c in cameras for o in DELIVERY_OUTPUTS):
        if time.monotonic() > deadline:
            raise TimeoutError(f'the node did not answer {", ".join(cameras)}')
        for camera in cameras:  # until the node and this client have discovered each other
            client.send(camera, messages[camera])
        time.sleep(0.5)
    time.sleep(GRACE_S)
    rows = []
    before = client.published(cameras)
    sent: List[tuple] = []
    for _ in range(frames):
        batch = [client.send(camera, messages[camera]) for camera in cameras]
        sent += batch
        client.wait(lambda: all(client.answered(one) for one in batch), 10.0)
    time.sleep(GRACE_S)
    after = client.published(cameras)
    rows.append(dict(transport=transport, cameras=len(cameras), workload='one at a time',
                     sent=len(sent), published=after - before,
                     delivered=client.delivered(sent)))
    sent, start = [], time.monotonic()
    next_time = start
    while time.monotonic() - start < flood_seconds:
        sent += [client.send(camera, messages[camera]) for camera in cameras]
        next_time += 1.0 / rate_hz
        time.sleep(max(0.0, next_time - time.monotonic()))
    time.sleep(GRACE_S)
    final = client.published(cameras)
    rows.append(dict(transport=transport, cameras=len(cameras), workload=f'{rate_hz:g} Hz',
                     sent=len(sent), published=final - after,
                     delivered=client.delivered(sent)))
    return rows


def _client_main(spec: Dict[str, Any]) -> int:
    client = _Client(spec['domain_id'], spec['cameras'])
    try:
        messages = {camera: _camera_frame(spec['height'], spec['width'], camera)
                    for camera in spec['cameras']}
        rows = []
        for count in spec['counts']:
            print(f'  {spec["transport"]}: {count} camera(s)...', file=sys.stderr, flush=True)
            chosen = {camera: messages[camera] for camera in spec['cameras'][:count]}
            rows += _measure(client, chosen, spec['transport'], spec['frames'],
                             spec['rate_hz'], spec['flood_seconds'])
    finally:
        client.close()
    print(json.dumps(rows), flush=True)
    return 0


def rows_to_dicts(rows: Sequence[DeliveryRow]) -> List[dict]:
    return [asdict(row) for row in rows]


if __name__ == '__main__':
    sys.exit(_client_main(json.loads(sys.argv[1])))
