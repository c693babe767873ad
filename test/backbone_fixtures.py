"""Fixtures of torchvision's ImageNet backbones, usable without torchvision.

``scripts/make_backbone_fixtures.py`` (run with a Python that has torchvision) builds
``resnet18``, ``resnet50`` and ``mobilenet_v3_large`` with ``weights=None``, records their
ordered state-dict keys and shapes, fills them with ``seeded_arrays`` (a numpy recipe that
only needs the keys, shapes and seed, so no weights are stored), and records the features
the network computes on ``fixture_image`` in float64. Tests rebuild the same state dict and
image from the fixture and compare our encoders' features with torchvision's.

Only numpy is imported here, so the script can use this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                           'backbones')
#: torchvision's builder -> our backbone name.
ARCHITECTURES = {'resnet18': 'resnet18', 'resnet50': 'resnet50',
                 'mobilenet_v3_large': 'mobilenetv3'}
WEIGHTS_SEED = 20250601
IMAGE_SEED = 11
#: (N, C, H, W) of the input; stride 32 gives 2x2 features, stride 16 3x3.
IMAGE_SHAPE = (1, 3, 48, 48)
#: Value of every ``num_batches_tracked`` (drawn from nothing, so the stream ignores them).
BATCHES_TRACKED = 7

#: (name, shape) of one state-dict tensor, in state-dict order.
Entry = Tuple[str, Tuple[int, ...]]


def seeded_arrays(entries: Sequence[Entry], seed: int = WEIGHTS_SEED) -> Dict[str, np.ndarray]:
    """A state dict of numpy arrays for ``entries``, drawn in their order from one generator.

    Conv / linear weights: He-normal; BatchNorm weight 0.5..1.5, bias and running_mean
    normal(0, 0.1), running_var 0.5..1.5 (positive); ``num_batches_tracked`` a constant.
    Floats are float32 (the dtype of torchvision's checkpoints).
    """
    rng = np.random.default_rng(seed)
    arrays: Dict[str, np.ndarray] = {}
    for name, shape in entries:
        leaf = name.rsplit('.', 1)[-1]
        shape = tuple(shape)
        if leaf == 'num_batches_tracked':
            arrays[name] = np.array(BATCHES_TRACKED, dtype=np.int64)
            continue
        if leaf in ('running_var',) or (leaf == 'weight' and len(shape) == 1):
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ('bias', 'running_mean'):
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        arrays[name] = value.astype(np.float32)
    return arrays


def fixture_image(seed: int = IMAGE_SEED) -> np.ndarray:
    """float64 ``IMAGE_SHAPE`` standard-normal input (an already normalised image)."""
    return np.random.default_rng(seed).standard_normal(IMAGE_SHAPE)


def checksum(arrays: Dict[str, np.ndarray]) -> float:
    """float64 sum of |values| of every array: tells whether the recipe still gives the same
    numbers as when the fixture was written."""
    return float(sum(np.abs(value.astype(np.float64)).sum() for value in arrays.values()))


@dataclass(frozen=True)
class BackboneFixture:
    """One ``<arch>.npz``: torchvision's keys and features on ``fixture_image``.

    Attributes:
        arch: torchvision's builder name.
        entries: Ordered (key, shape) of its state dict, classifier included.
        weights_seed, image_seed: Seeds of ``seeded_arrays`` and ``fixture_image``.
        weights_checksum: ``checksum`` of the arrays the features were computed with.
        features: Output stride -> float32 (1, C, h, w) features (ResNet ``layer4``,
            MobileNetV3 ``features``) computed in float64.
        versions: torch / torchvision / numpy versions that wrote it.
    """

    arch: str
    entries: List[Entry]
    weights_seed: int
    image_seed: int
    weights_checksum: float
    features: Dict[int, np.ndarray]
    versions: str


def fixture_path(arch: str) -> str:
    return os.path.join(FIXTURE_DIR, f'{arch}.npz')


def save_fixture(fixture: BackboneFixture, path: str) -> None:
    arrays = {f'features_os{stride}': value.astype(np.float32)
              for stride, value in fixture.features.items()}
    meta = {'arch': fixture.arch, 'entries': [[k, list(s)] for k, s in fixture.entries],
            'weights_seed': fixture.weights_seed, 'image_seed': fixture.image_seed,
            'weights_checksum': fixture.weights_checksum, 'versions': fixture.versions}
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)


def load_fixture(arch: str) -> BackboneFixture:
    with np.load(fixture_path(arch), allow_pickle=False) as data:
        meta = json.loads(str(data['meta']))
        features = {int(name[len('features_os'):]): data[name] for name in data.files
                    if name.startswith('features_os')}
    return BackboneFixture(
        arch=meta['arch'], entries=[(k, tuple(s)) for k, s in meta['entries']],
        weights_seed=meta['weights_seed'], image_seed=meta['image_seed'],
        weights_checksum=meta['weights_checksum'], features=features,
        versions=meta['versions'])
