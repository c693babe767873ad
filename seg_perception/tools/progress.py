"""A one-line progress bar with ETA on stderr (no dependency)."""

from __future__ import annotations

import math
import sys
import time


def progress_line(prefix: str, done: int, total: int, started: float, suffix: str = '') -> None:
    """Redraw ``prefix [####    ] done/total eta Ns suffix``; newline when finished.

    ``started`` is the ``time.monotonic()`` of the start.
    """
    fraction = done / max(total, 1)
    elapsed = time.monotonic() - started
    eta = elapsed / fraction - elapsed if fraction > 0 else float('nan')
    bar = '#' * int(fraction * 30)
    eta_text = f'{eta:5.0f}s' if math.isfinite(eta) else '    ?'
    sys.stderr.write(f'\r{prefix} [{bar:<30}] {done}/{total} eta {eta_text} {suffix}   ')
    if done >= total:
        sys.stderr.write('\n')
    sys.stderr.flush()
