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
from typing import Any, Iterator, Sequence

#: How many offending keys / objects an error names.
KEYS_SHOWN = 3


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


def key_names(keys: Sequence[str]) -> str:
    """``[a, b, c, ...]``: the first ``KEYS_SHOWN`` of ``keys`` for an error message."""
    shown = ', '.join(keys[:KEYS_SHOWN])
    return f'[{shown}{", ..." if len(keys) > KEYS_SHOWN else ""}]'


def first_line(error: BaseException, limit: int = 160, with_type: bool = True) -> str:
    """``Type: first non-empty line`` of an error's message, cut to ``limit`` characters; for
    torch's weights-only refusals the unpickler's own reason (their first line is advice
    about ``weights_only=False``)."""
    message = str(error).split('WeightsUnpickler error:', 1)[-1]
    text = next((line.strip() for line in message.splitlines() if line.strip()), '')
    text = text if len(text) <= limit else text[:limit - 3] + '...'
    if not with_type:
        return text or type(error).__name__
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def load_torch_file(path: str, unsafe_hint: str, safe_globals: Sequence[Any] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one-line errors.

    Args:
        path: The checkpoint file.
        unsafe_hint: What to tell a user whose file holds objects weights-only loading
            refuses (how to save it instead).
        safe_globals: Extra globals weights-only loading may build (torch >= 2.5).

    Raises:
        ModelImportError: the file holds code / objects, or is truncated or corrupt.
    """
    import torch
    allow = getattr(torch.serialization, 'safe_globals', None)
    try:
        if allow is None or not safe_globals:  # torch < 2.5 has no safe_globals
            return torch.load(path, map_location='cpu', weights_only=True)
        with allow(list(safe_globals)):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - zip, pickle and torch errors alike
        unsafe = []
        try:
            unsafe = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # noqa: BLE001 - unreadable: report the load error below
            pass
        if unsafe:
            raise ModelImportError(
                f'{path} holds objects torch.load(weights_only=True) does not load '
                f'({", ".join(unsafe[:KEYS_SHOWN])}); {unsafe_hint}') from None
        raise ModelImportError(f'{path} is not a readable PyTorch checkpoint (truncated or '
                               f'corrupt?): {first_line(error)}') from None


def export_staged(network: Any, manifest: Any, out_dir: str) -> Any:
    """Export ``network`` with ``manifest`` as the package ``out_dir`` through
    ``staged_package``; returns the written manifest.

    Raises:
        ModelImportError: the export failed (nothing is written) or ``out_dir`` is taken.
    """
    from ...export.graph import ExportError
    from ...export.onnx_export import export_model_package
    with staged_package(out_dir) as scratch:
        try:
            return export_model_package(network, manifest, scratch)
        except ExportError as error:
            raise ModelImportError(f'export failed: {first_line(error)}') from None
