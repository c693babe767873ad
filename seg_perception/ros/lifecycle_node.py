"""``seg_perception_lifecycle_node``: the segmentation node as a managed (lifecycle) node.

The same parameters, topics and diagnostics as ``seg_perception_node`` (both are built from
``segmentation.SegmentationParts``); a lifecycle manager (Nav2's, Autoware's, or
``ros2 lifecycle set``) brings it up and down without a restart:

- configure: read and validate the parameters, load the model, build or verify the TensorRT
  engine (slow work happens here, not on activate);
- activate: subscribe the cameras, create the output publishers, diagnostics and the
  inference worker;
- deactivate: stop the worker, destroy subscriptions and publishers (no output while
  inactive);
- cleanup: release the model (back to unconfigured; configure reads the parameters again);
- shutdown: all of the above, from any state.

A configure that cannot succeed (bad parameter, missing model, no engine) returns FAILURE
and logs its one-line reason; the node stays unconfigured. Uses ``rclpy.lifecycle`` (since
Humble).

Run: ``ros2 run seg_perception seg_perception_lifecycle_node --ros-args -p cameras:="[front]"``
then ``ros2 lifecycle set /seg_perception configure`` and ``... activate``.
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from .node import NODE_NAME, run_node
from .parameters import declare_parameters, NodeStartupError, read_parameters
from .segmentation import SegmentationParts


class SegmentationLifecycleNode(SegmentationParts, LifecycleNode):
    """The segmentation node, managed: nothing is loaded before configure."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        try:
            declare_parameters(self)  # declared now so they can be listed and set
        except NodeStartupError as error:
            # Reported by configure, which declares the rest and reads them again.
            self.get_logger().warning(f'{error} (configure will fail until it is fixed)')
        self._init_parts()
        self._active = False

    # ------------------------------------------------------------------ transitions

    def on_configure(self, state: Any) -> TransitionCallbackReturn:
        try:
            config = read_parameters(self)
            if config.build_engine_only:
                raise NodeStartupError('parameter build_engine_only is for '
                                       'seg_perception_node; a lifecycle node keeps running')
            self.configure_parts(config)
        except NodeStartupError as error:
            self.release_parts()
            self._config = None
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        info = self._model_info
        self.get_logger().info(f'configured: model {info.model} on {info.backend} '
                               f'{info.device} {info.precision}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: Any) -> TransitionCallbackReturn:
        self.start_parts()
        self._active = True
        self.get_logger().info('activated')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: Any) -> TransitionCallbackReturn:
        if not self._deactivate():
            return TransitionCallbackReturn.ERROR
        self.get_logger().info('deactivated')
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: Any) -> TransitionCallbackReturn:
        self.release_parts()
        self._config = None
        self.get_logger().info('cleaned up')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: Any) -> TransitionCallbackReturn:
        joined = self._deactivate()
        if joined:
            self.release_parts()
        return TransitionCallbackReturn.SUCCESS if joined else TransitionCallbackReturn.ERROR

    def on_error(self, state: Any) -> TransitionCallbackReturn:
        joined = self._deactivate()
        if joined:
            self.release_parts()
        self._config = None
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def _deactivate(self) -> bool:
        """Stop the worker and destroy the I/O if active; False if the worker hung."""
        if not self._active:
            return True
        self._active = False
        joined = self.stop_parts()
        if not joined:
            self.get_logger().error('inference thread did not stop in time')
        return joined

    # ------------------------------------------------------------------ process end

    def close(self) -> bool:
        """Stop and release whatever the current state holds, then destroy the node."""
        joined = self._deactivate()
        if joined:
            self.release_parts()
        self.destroy_node()
        return joined


def main(args: Optional[List[str]] = None) -> int:
    """Console script ``seg_perception_lifecycle_node``; returns the exit status.

    Starts unconfigured. Ctrl-C and SIGTERM stop it cleanly from any state. A parameter that
    cannot even be declared is logged and reported again by configure.
    """
    return run_node(SegmentationLifecycleNode, 'seg_perception_lifecycle_node', args)


if __name__ == '__main__':
    sys.exit(main())
