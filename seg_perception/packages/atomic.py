"""Atomic file writes: a temporary file in the same directory, fsync, then rename.

A write that is interrupted (crash, Ctrl-C, power loss) leaves either the old file or
nothing at the destination, never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator, List, Sequence, Tuple


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


def atomic_write_files(files: Sequence[Tuple[str, bytes]]) -> None:
    """Write several files so that a failure leaves every destination as it was.

    Each file is first written in full to a temporary sibling (and fsynced); only when all
    of them are on disk are they renamed over their destinations, in the order given (put
    the file that vouches for the others, such as a manifest, last). A full or read-only
    disk therefore fails before any destination changes; the temporary files are removed.

    Raises:
        OSError: From creating a directory or writing a temporary file.
    """
    done: List[Tuple[str, str]] = []
    try:
        for path, data in files:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                                            suffix='.tmp', dir=directory)
            done.append((tmp_path, path))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
            with os.fdopen(fd, 'wb') as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        for tmp_path, path in done:
            os.replace(tmp_path, path)
    except BaseException:
        for tmp_path, _ in done:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
        raise
