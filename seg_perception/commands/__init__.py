"""Sub-commands of ``seg-perception`` (one module each; see ``seg_perception.cli``)."""

import re
from typing import Tuple

_WIDTH_HEIGHT = re.compile(r'^(\d+)[xX](\d+)$')


def parse_width_height(text: str, flag: str, example: str) -> Tuple[int, int]:
    """``'1024x512'`` -> (1024, 512); otherwise a ``ValueError`` naming ``flag``."""
    match = _WIDTH_HEIGHT.match(text.strip())
    if not match:
        raise ValueError(f'{flag} {text!r} must be WIDTHxHEIGHT, e.g. {example}')
    return int(match.group(1)), int(match.group(2))


def os_error_line(error: OSError) -> str:
    """``[Errno 28] No space left on device: '/x'`` -> ``/x: No space left on device``: the
    one line a command prints for a full, read-only or missing disk path."""
    what = error.strerror or str(error)
    return f'{error.filename}: {what}' if error.filename else what


def report_tensorrt_check(package_dir: str, onnx_path: str) -> None:
    """Print whether TensorRT 8.5 / 10.x can parse a package just written (a warning on
    stderr naming ``check-onnx`` when it cannot)."""
    import sys

    from ..export.tensorrt_check import check_tensorrt_compatibility
    issues = check_tensorrt_compatibility(onnx_path)
    if issues:
        print(f'WARNING: {len(issues)} TensorRT compatibility issue(s); run '
              f'seg-perception check-onnx {package_dir}', file=sys.stderr)
    else:
        print('  TensorRT 8.5 / 10.x: no unsupported nodes')
