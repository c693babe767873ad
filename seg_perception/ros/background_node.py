"""An rclpy node in a context of its own, spun by a daemon thread: the benchmark clients."""

from __future__ import annotations

import threading
from typing import Optional


class BackgroundNode:
    """Creates ``self.context`` (initialised on ``domain_id``) and ``self.node``.

    A subclass creates its publishers and subscriptions, then calls ``start_spinning``;
    ``close`` shuts the context down, joins the thread and destroys the node.
    """

    def __init__(self, name: str, domain_id: int) -> None:
        import rclpy
        from rclpy.context import Context
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self._executor = None
        self._thread: Optional[threading.Thread] = None

    def start_spinning(self) -> None:
        from rclpy.executors import SingleThreadedExecutor
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self._executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - context shut down
            pass

    def close(self) -> None:
        self.context.try_shutdown()
        if self._thread is not None:
            self._thread.join(5)
            self._executor.shutdown()
        self.node.destroy_node()
