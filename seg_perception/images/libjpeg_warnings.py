"""The warnings libjpeg prints while OpenCV decodes a JPEG, so corrupt data can be refused.

libjpeg treats damaged entropy-coded (scan) data as recoverable: it prints one warning such as
``Corrupt JPEG data: 29 extraneous bytes before marker 0xd9`` or ``Corrupt JPEG data: bad
Huffman code`` to stderr, fills or garbles the affected blocks and finishes; ``cv2.imdecode``
then returns that picture as if nothing happened (it has no strict flag, and OpenCV 4 and 5
both install only libjpeg's fatal-error hook). The only trace is the text on file descriptor
2, so :func:`call_with_libjpeg_warnings` points descriptor 2 at a scratch file for the length
of one call and reads the warning back.

While it runs, whatever other threads write to stderr lands in the scratch file too; it is
written back to the real stderr right after the call (delayed by the decode, never lost). One
call runs at a time (a lock). Where descriptor 2 cannot be duplicated (closed), the call runs
unwatched and no warning can be seen.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from typing import Any, Callable, List, Optional, Tuple, TypeVar

Result = TypeVar('Result')

#: Beginnings of libjpeg(-turbo) warnings (jerror.h, JWRN_*) that mean the picture is damaged.
#: Harmless ones (an unknown JFIF revision, an Adobe transform code) do not count.
CORRUPTION_WARNINGS = (
    'Corrupt JPEG data',  # extraneous bytes, premature end of data segment, bad Huffman code...
    'Premature end of JPEG file',
    'Inconsistent progression sequence',
    'Invalid SOS parameters for sequential JPEG',
)
#: Beginnings of every libjpeg warning line (so they are not echoed back to stderr).
_LIBJPEG_LINES = CORRUPTION_WARNINGS + ('Warning: unknown JFIF revision number',
                                        'Unknown Adobe color transform code',
                                        'Application transferred too many scanlines')

_lock = threading.Lock()
_scratch: Optional[Any] = None


def call_with_libjpeg_warnings(function: Callable[[], Result]) -> Tuple[Result, List[str]]:
    """Run ``function()`` (an OpenCV JPEG decode) and collect libjpeg's warnings.

    Returns:
        (what ``function`` returned, the libjpeg warning lines it printed; libjpeg prints at
        most the first warning of each image).
    """
    global _scratch
    with _lock:
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:
            return function(), []
        try:
            if _scratch is None:
                _scratch = tempfile.TemporaryFile()
            _scratch.seek(0)
            _scratch.truncate()
            os.dup2(_scratch.fileno(), 2)
            try:
                result = function()
            finally:
                os.dup2(saved, 2)
            _scratch.seek(0)
            text = _scratch.read().decode('utf-8', errors='replace')
        finally:
            os.close(saved)
    warnings, others = [], []
    for line in text.splitlines(keepends=True):
        (warnings if line.startswith(_LIBJPEG_LINES) else others).append(line)
    if others:
        os.write(2, ''.join(others).encode('utf-8', errors='replace'))
    return result, [line.strip() for line in warnings]


def corruption_warning(warnings: List[str]) -> Optional[str]:
    """The first of ``warnings`` that means the picture is damaged, or None."""
    return next((line for line in warnings if line.startswith(CORRUPTION_WARNINGS)), None)
