"""Importers: the models users already have, written as this project's model packages.

One module per source (any segmentation ONNX graph, torchvision checkpoints, PyTorch-ENet
checkpoints). Each validates everything before writing and writes through
``staged_package``, so a failed import leaves nothing at the destination.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator


class ModelImportError(ValueError):
    """The source model cannot be imported; the message is one line naming what to change."""


@contextlib.contextmanager
def staged_package(out_dir: str) -> Iterator[str]:
    """A scratch directory beside ``out_dir`` that becomes ``out_dir`` on success.

    The caller writes the package into the yielded directory. On success it replaces
    ``out_dir`` (which must not exist or be an empty directory); on any error it is removed
    and ``out_dir`` is left as it was.

    Raises:
        ModelImportError: ``out_dir`` exists and is not empty.
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ModelImportError(f'--out {out_dir} exists and is not an empty directory; '
                               'choose another')
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix='.' + os.path.basename(out_dir) + '.', dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(scratch, 0o777 & ~umask)  # mkdtemp makes 0700; give what os.mkdir gives
        yield scratch
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)
        os.replace(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
