"""Sliding-window event rates and latency percentiles for diagnostics.

Times are seconds from any monotonic clock the caller chooses (``time.monotonic()`` in the
node), passed in explicitly so that tests can drive the clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import threading
from typing import Deque, Optional

import numpy as np


class RateMeter:
    """Events per second over the last ``window_s`` seconds (thread-safe).

    Args:
        window_s: Length of the window in seconds.
        max_events: Memory bound: at most this many recent event times are kept.
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 1000) -> None:
        if window_s <= 0 or max_events < 2:
            raise ValueError(f'window_s must be > 0 and max_events >= 2, got {window_s}, '
                             f'{max_events}')
        self._window_s = float(window_s)
        self._times: Deque[float] = deque(maxlen=max_events)
        self._count = 0
        self._lock = threading.Lock()

    def record(self, now: float) -> None:
        with self._lock:
            self._times.append(float(now))
            self._count += 1

    @property
    def count(self) -> int:
        """Events recorded since creation."""
        return self._count

    def rate(self, now: float) -> float:
        """Events per second in the window ending at ``now``; 0 with fewer than two events.

        The rate is (events - 1) / (span between first and last event in the window), so a
        steady 10 Hz stream reads 10 Hz regardless of where the window edges fall; a stream
        that stopped reads 0 once its last event left the window.
        """
        with self._lock:
            start = now - self._window_s
            recent = [t for t in self._times if t >= start]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles in milliseconds over the last samples (None without samples)."""

    p50_ms: Optional[float]
    p95_ms: Optional[float]
    max_ms: Optional[float]
    samples: int


class LatencyWindow:
    """The last ``size`` latency samples (seconds in, milliseconds out; thread-safe)."""

    def __init__(self, size: int = 200) -> None:
        if size < 1:
            raise ValueError(f'size must be >= 1, got {size}')
        self._samples: Deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(float(seconds))

    def summary(self) -> LatencySummary:
        with self._lock:
            samples = np.asarray(self._samples, dtype=np.float64)
        if samples.size == 0:
            return LatencySummary(None, None, None, 0)
        p50, p95 = np.percentile(samples, [50.0, 95.0]) * 1e3
        return LatencySummary(float(p50), float(p95), float(samples.max() * 1e3),
                              int(samples.size))
