"""Atomic file writes: a temporary file in the same directory, fsync, then rename.

A write that is interrupted (crash, Ctrl-C, power loss) leaves either the old file or
nothing at the destination, never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb') -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open supports modes "w" and "wb", not {mode!r}')
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                                    dir=directory)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        with os.fdopen(fd, mode, **({} if 'b' in mode else {'encoding': 'utf-8'})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, 'wb') as stream:
        stream.write(data)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_open(path, 'w') as stream:
        stream.write(text)
