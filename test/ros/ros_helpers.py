"""Helpers for tests against a real ``seg_perception_node`` process over real ROS 2 topics.

Every test module gets its own ``ROS_DOMAIN_ID`` (from the pid and a counter, in 1..101) so
parallel test runs do not hear each other. ``RosClient`` is an rclpy node in its own
context, spun in a background thread, that publishes camera images, records outputs and
calls the node's parameter service. ``NodeProcess`` starts the node as a subprocess.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from seg_perception.ros.background_node import BackgroundNode

_counter = itertools.count()
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fresh_domain_id() -> int:
    """A ROS domain id in 1..101 that differs per process and per call."""
    return 1 + (os.getpid() * 7 + next(_counter)) % 101


def node_command(parameters: Dict[str, Any],
                 module: str = 'seg_perception.ros.node') -> List[str]:
    """``python -m <module> --ros-args -p name:=value ...``."""
    command = [sys.executable, '-m', module, '--ros-args']
    for name, value in parameters.items():
        if isinstance(value, (list, tuple)):
            text = '[' + ', '.join(str(v) for v in value) + ']'
        elif isinstance(value, bool):
            text = 'true' if value else 'false'
        else:
            text = str(value)
        command += ['-p', f'{name}:={text}']
    return command


def node_env(domain_id: int, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['PYTHONUNBUFFERED'] = '1'
    env['OMP_NUM_THREADS'] = '1'
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.update(extra or {})
    return env


class NodeProcess:
    """The node as a subprocess; its output goes to ``log_path``."""

    def __init__(self, parameters: Dict[str, Any], domain_id: int, log_path: str,
                 env: Optional[Dict[str, str]] = None,
                 module: str = 'seg_perception.ros.node') -> None:
        self.log_path = log_path
        self._log = open(log_path, 'w', encoding='utf-8')
        self.process = subprocess.Popen(node_command(parameters, module),
                                        env=node_env(domain_id, env),
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=REPO_ROOT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, 'r', encoding='utf-8') as stream:
            return stream.read()

    def rss_bytes(self) -> int:
        """Resident set size of the node process now."""
        with open(f'/proc/{self.pid}/status', 'r', encoding='utf-8') as stream:
            for line in stream:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        raise RuntimeError('no VmRSS line')

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait; returns the exit status (kills after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not self._log.closed:
            self._log.close()
        return self.process.returncode


class RosClient(BackgroundNode):
    """A test-side rclpy node in its own context, spinning in a background thread."""

    def __init__(self, domain_id: int, name: str = 'seg_test_client') -> None:
        super().__init__(name, domain_id)
        self._condition = threading.Condition()
        self._messages: Dict[str, Deque[Any]] = {}
        self._arrivals: Dict[str, List[Tuple[float, float]]] = {}
        self.start_spinning()

    # ------------------------------------------------------------------ topics

    def subscribe(self, topic: str, msg_type: type, keep: int = 4,
                  reliable: bool = True) -> None:
        """Record the last ``keep`` messages of ``topic`` and every arrival's stamp."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        with self._condition:
            self._messages[topic] = collections.deque(maxlen=keep)
            self._arrivals[topic] = []
        self.node.create_subscription(msg_type, topic,
                                      lambda msg, topic=topic: self._record(topic, msg), qos)

    def _record(self, topic: str, msg: Any) -> None:
        now = time.time()
        stamp = getattr(msg, 'header', None)
        stamp_s = stamp.stamp.sec + stamp.stamp.nanosec * 1e-9 if stamp is not None else 0.0
        with self._condition:
            self._messages[topic].append(msg)
            self._arrivals[topic].append((stamp_s, now))
            self._condition.notify_all()

    def publisher(self, topic: str, msg_type: type, reliable: bool = True):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        return self.node.create_publisher(msg_type, topic, qos)

    def messages(self, topic: str) -> List[Any]:
        with self._condition:
            return list(self._messages[topic])

    def arrivals(self, topic: str) -> List[Tuple[float, float]]:
        """(header stamp, receipt wall time) of every message received on ``topic``."""
        with self._condition:
            return list(self._arrivals[topic])

    def find(self, topic: str, stamp: Tuple[int, int]) -> Optional[Any]:
        """The recorded message of ``topic`` whose header stamp is ``(sec, nanosec)``."""
        with self._condition:
            for msg in reversed(self._messages[topic]):
                if (msg.header.stamp.sec, msg.header.stamp.nanosec) == tuple(stamp):
                    return msg
        return None

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every message and every 50 ms)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.05))
        return True

    def now_stamp(self):
        return self.node.get_clock().now().to_msg()

    # ------------------------------------------------------------------ parameters

    def set_parameters(self, node_name: str, values: Dict[str, Any],
                       timeout: float = 10.0) -> List[Any]:
        """Call ``<node>/set_parameters``; returns the ``SetParametersResult`` list."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        client = self.node.create_client(SetParameters, f'{node_name}/set_parameters')
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f'{node_name}/set_parameters is not available')
            request = SetParameters.Request(
                parameters=[Parameter(name, value=value).to_parameter_msg()
                            for name, value in values.items()])
            future = client.call_async(request)
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not future.done():
                raise TimeoutError(f'{node_name}/set_parameters did not answer')
            return list(future.result().results)
        finally:
            self.node.destroy_client(client)

def rgb_message(image: np.ndarray, stamp: Any, frame_id: str, encoding: str = 'rgb8'):
    """A ``sensor_msgs/Image`` of ``image`` with the given stamp and frame id."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from seg_perception.images.raw import encode_image
    return encode_image(image, encoding, header=Header(stamp=stamp, frame_id=frame_id),
                        image_msg_type=Image)


def raw_message(height: int, width: int, encoding: str, step: int, data_length: int,
                stamp: Any, frame_id: str = 'bad'):
    """A hand-made (possibly malformed) ``sensor_msgs/Image``."""
    import array

    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    msg = Image(header=Header(stamp=stamp, frame_id=frame_id), height=height, width=width,
                encoding=encoding, step=step)
    msg.data = array.array('B', bytes(data_length))
    return msg


def decode(msg: Any) -> np.ndarray:
    """A copy of an output image's pixels in its native layout."""
    from seg_perception.images.raw import decode_image
    return np.array(decode_image(msg))


def stamp_key(stamp: Any) -> Tuple[int, int]:
    return int(stamp.sec), int(stamp.nanosec)


def diagnostic_values(array_msg: Any, name_suffix: str) -> Optional[Dict[str, str]]:
    """Key/values of the status whose name ends with ``name_suffix`` in a DiagnosticArray."""
    for status in array_msg.status:
        if status.name.endswith(name_suffix):
            return {kv.key: kv.value for kv in status.values}
    return None


def wait_until_subscribed(client: RosClient, publishers: Sequence[Any],
                          timeout: float) -> bool:
    """Wait until every publisher has at least one matched subscription (the node's)."""
    return client.wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers),
                           timeout)


def _best_effort_probe(role: str, seconds: float, wanted: int) -> int:
    """``pub``: publish 1024x512 rgb8 best-effort images at 10 Hz for ``seconds``.
    ``sub``: count them; exit once ``wanted`` arrived or after ``seconds``; print the count.
    """
    import array

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node(f'best_effort_{role}')
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    deadline = time.monotonic() + seconds
    received = []
    if role == 'pub':
        publisher = node.create_publisher(Image, 'probe_image', qos)
        msg = Image(height=512, width=1024, encoding='rgb8', step=3072)
        msg.data = array.array('B', bytes(512 * 3072))
        while time.monotonic() < deadline:
            publisher.publish(msg)
            time.sleep(0.1)
    else:
        node.create_subscription(Image, 'probe_image', lambda msg: received.append(msg.width),
                                 qos)
        while time.monotonic() < deadline and len(received) < wanted:
            rclpy.spin_once(node, timeout_sec=0.1)
        print(f'received {len(received)}', flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(_best_effort_probe(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
