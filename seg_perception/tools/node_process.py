"""Start and stop ``seg_perception_node`` as a child process (demo and node benchmark)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import IO, Mapping, Sequence, Union


def node_command(model: str, backend: str, cameras: Sequence[str], threads: int) -> list:
    """``python -m seg_perception.ros.node --ros-args -p ...`` for the given parameters."""
    return [sys.executable, '-m', 'seg_perception.ros.node', '--ros-args',
            '-p', f'model:={model}', '-p', f'backend:={backend}',
            '-p', f'cameras:=[{", ".join(cameras)}]', '-p', f'threads:={threads}']


def start_node(command: Sequence[str], domain_id: int, log: Union[IO, int],
               extra_env: Mapping[str, str] = ()) -> subprocess.Popen:
    """Start the node on ``domain_id`` with its output going to ``log``."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), **dict(extra_env))
    return subprocess.Popen(list(command), env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_node(node: subprocess.Popen, timeout: float = 30.0) -> bool:
    """Ctrl-C the node and wait; kill it after ``timeout``. True when it stopped by itself."""
    if node.poll() is not None:
        return True
    node.send_signal(signal.SIGINT)
    try:
        node.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()
        return False
