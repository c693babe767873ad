"""The progress bar of every long command: counts, rate, ETA; terminal or log friendly.

On a terminal it redraws one line (at most 5 times a second); otherwise (logs, CI, a pipe)
it prints a plain line every 10 % or 30 seconds, so redirected output stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Optional


def format_duration(seconds: float) -> str:
    """``75`` -> ``'1:15'``; ``3700`` -> ``'1:01:40'``."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


class ProgressBar:
    """Counts finished items out of ``total`` (None when unknown).

    Args:
        total: Expected number of items, or None.
        label: Word shown before the counts (``eval``).
        stream: Where to draw (default stderr).
        enabled: False draws nothing.
    """

    def __init__(self, total: Optional[int], label: str = '', stream: Optional[IO] = None,
                 enabled: bool = True, width: int = 30) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._interactive = enabled and hasattr(self.stream, 'isatty') and self.stream.isatty()
        self._last_draw = self.started
        self._last_fraction = 0.0

    def line(self, note: str = '') -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [self.label] if self.label else []
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(round(fraction * self.width))
            parts.append('[' + '#' * filled + '.' * (self.width - filled) + ']')
            parts.append(f'{self.done}/{self.total} {fraction * 100:3.0f}%')
            eta = format_duration((self.total - self.done) / rate) if rate > 0 else '?'
            parts.append(f'{rate:.1f}/s ETA {eta}')
        else:
            parts.append(f'{self.done} {rate:.1f}/s')
        parts.append(f'elapsed {format_duration(elapsed)}')
        if note:
            parts.append(note)
        return ' '.join(parts)

    def update(self, done: int, note: str = '') -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if self._interactive:
            if now - self._last_draw >= 0.2 or (self.total and done >= self.total):
                self._last_draw = now
                self.stream.write('\r' + self.line(note) + '\x1b[K')
                self.stream.flush()
            return
        fraction = done / self.total if self.total else 0.0
        if fraction - self._last_fraction >= 0.1 or now - self._last_draw >= 30.0:
            self._last_draw, self._last_fraction = now, fraction
            self.stream.write(self.line(note) + '\n')
            self.stream.flush()

    def finish(self, note: str = '') -> None:
        if not self.enabled:
            return
        self.stream.write(('\r' if self._interactive else '') + self.line(note) + '\n')
        self.stream.flush()
