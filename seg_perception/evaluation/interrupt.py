"""Stopping an evaluation: the state its three stages share, and Ctrl-C / SIGTERM handling.

The first SIGINT (or a SIGTERM) sets the run's ``stop`` event, so reading stops and the
frames in flight are finished and written; a second SIGINT raises KeyboardInterrupt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import signal
import threading
from typing import Any, Dict, List


@dataclass
class RunState:
    """Mutable state shared by the three stages of one evaluation."""

    stop: threading.Event = field(default_factory=threading.Event)
    errors: List[BaseException] = field(default_factory=list)
    interrupted: bool = False


class SigintStop:
    """First Ctrl-C (or SIGTERM) sets ``stop``; a second Ctrl-C raises KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, run: RunState, enabled: bool) -> None:
        self.run = run
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.previous: Dict[int, Any] = {}

    def __enter__(self) -> 'SigintStop':
        if self.enabled:
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.run.interrupted and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.run.interrupted = True
        self.run.stop.set()
        import sys
        print(f'\neval: {signal.Signals(signum).name}: stopping after the frames in flight '
              '(Ctrl-C again to abort)', file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
