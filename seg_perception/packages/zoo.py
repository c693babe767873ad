"""The model zoo: trained model packages shipped inside this Python package.

Each zoo model is a model package directory under ``seg_perception/zoo/<name>/``
(``model.onnx``, ``manifest.yaml``, ``weights.pt``, ``MODEL_CARD.md``), trained by this
project's own ``seg-perception train`` on its synthetic driving scenes. The node's
``model`` parameter and ``Segmenter.from_zoo`` accept these names.
"""

from __future__ import annotations

import os
from typing import List

from ..manifest import MANIFEST_FILE

ZOO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'zoo')


class UnknownZooModelError(ValueError):
    """The name is neither a shipped zoo model nor a model-package directory."""


def list_zoo() -> List[str]:
    """Names of the shipped zoo models (directories holding a manifest), sorted."""
    if not os.path.isdir(ZOO_DIR):
        return []
    return sorted(name for name in os.listdir(ZOO_DIR)
                  if os.path.isfile(os.path.join(ZOO_DIR, name, MANIFEST_FILE)))


def resolve_zoo_model(name: str) -> str:
    """Directory of zoo model ``name``; raises ``UnknownZooModelError`` listing the valid ones."""
    if name in list_zoo():
        return os.path.join(ZOO_DIR, name)
    available = ', '.join(list_zoo()) or 'none shipped in this installation'
    raise UnknownZooModelError(f'unknown zoo model {name!r}; available: {available}')


def resolve_model(name_or_path: str) -> str:
    """A zoo name or a model-package path (a directory with a manifest) -> package directory."""
    if os.path.isdir(name_or_path):
        return name_or_path
    if os.sep in name_or_path or name_or_path.startswith('.'):
        raise UnknownZooModelError(
            f'model package {name_or_path!r} does not exist (zoo models: '
            f'{", ".join(list_zoo()) or "none"})')
    return resolve_zoo_model(name_or_path)
