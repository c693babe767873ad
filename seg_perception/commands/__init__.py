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
