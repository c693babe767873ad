"""``seg_perception_node``: camera images in, semantic / instance / panoptic images out.

Thin rclpy glue over the ROS-free core: parameters come from ``pipeline.config``, the
segmentation steps from ``segmentation.SegmentationParts`` (shared with the lifecycle node,
``lifecycle_node``), which this node runs all at once in its constructor. Written against
the Humble API; newer APIs are guarded.

Per camera namespace ``<cam>``::

    in:  <cam>/<image_topic> (or <cam>/<image_topic>/compressed), and the camera_info beside
         it (image_transport's convention: color/image_raw -> color/camera_info)
    out: <cam>/segmentation/<output> for each row of ``pipeline.outputs.OUTPUTS``
    and /diagnostics (statuses ``<node name>: model`` and ``<node name>: <cam>``, period
    ``diagnostic_updater.period``). Each output is rendered and published only while it has
    a subscriber; inference runs for every camera frame regardless.

Run: ``ros2 run seg_perception seg_perception_node --ros-args -p model:=enet_panoptic
-p cameras:="[front, rear]"``.

Helpers of this module: ``segmentation`` (the steps), ``parameters`` (declaration from the
parameter table, unknown overrides), ``qos`` (profiles, following the camera's reliability),
``camera_io`` (per-camera state and checks), ``messages`` (detections, camera_info copies)
and ``diagnostics`` (/diagnostics messages).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Callable, List, Optional

import rclpy
from rclpy.node import Node

from .parameters import declare_parameters, NodeStartupError
from .segmentation import SegmentationParts

NODE_NAME = 'seg_perception'


class SegmentationNode(SegmentationParts, Node):
    """The segmentation node; raises ``NodeStartupError`` when it cannot start."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        config = declare_parameters(self)
        self._init_parts()
        self.configure_parts(config)
        self.engine_only = config.build_engine_only
        if self.engine_only:
            self.get_logger().info(
                f'build_engine_only: TensorRT engine ready '
                f'({getattr(self._segmenter.backend, "engine_path", "?")}); exiting')
            return
        self.start_parts()

    def close(self) -> bool:
        """Stop the worker (joined), release the model and destroy the node.

        Returns:
            True when the worker thread ended in time.
        """
        joined = self.stop_parts()
        if joined:
            self.release_parts()
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
    return run_node(SegmentationNode, 'seg_perception_node', args)


def run_node(factory: Callable[[], Node], program: str,
             args: Optional[List[str]] = None) -> int:
    """Start ROS, make the node with ``factory`` and spin it until Ctrl-C / SIGTERM.

    The node must have ``close() -> bool`` (False: its worker did not stop in time) and may
    have ``engine_only`` (True: exit at once). Returns the exit status.
    """
    transport = _use_large_data_transport()
    _init_rclpy(args)
    stop = threading.Event()

    def request_stop(signum, frame) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            node = factory()
        except NodeStartupError as error:
            print(f'{program}: error: {error}', file=sys.stderr, flush=True)
            return 2
        if getattr(node, 'engine_only', False):
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
                print(f'{program}: warning: inference thread did not stop in time',
                      file=sys.stderr)
            executor.shutdown()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
