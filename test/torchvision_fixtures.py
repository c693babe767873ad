"""Fixtures of torchvision's six segmentation networks, without torchvision.

``scripts/make_torchvision_fixtures.py`` (run with a Python that has torchvision) builds each
network, fills its state dict with ``fixture_array`` (a numpy recipe keyed by tensor name,
so no weights need to be stored), runs it on a seeded image and writes
``test/fixtures/torchvision/<arch>.npz``. Tests read that file with ``load_fixture`` and
rebuild the very same state dict with ``fixture_state_dict``. This module needs numpy only
(torch is imported inside ``fixture_state_dict``), so the script can import it too.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from typing import Dict, List, Sequence, Tuple
import zlib

import numpy as np

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                           'torchvision')
ARCHITECTURES = (
    'fcn_resnet50', 'fcn_resnet101', 'deeplabv3_resnet50', 'deeplabv3_resnet101',
    'deeplabv3_mobilenet_v3_large', 'lraspp_mobilenet_v3_large',
)
NUM_CLASSES = 21
IMAGE_HEIGHT, IMAGE_WIDTH = 64, 96
#: ImageNet mean / std on the 0..1 scale (torchvision's transforms and the manifest's).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

#: (name, shape, dtype) of one state-dict tensor.
Entry = Tuple[str, Tuple[int, ...], str]


def fixture_array(name: str, shape: Sequence[int], dtype: str, seed: int) -> np.ndarray:
    """The value the fixtures give the state-dict tensor ``name``.

    Seeded by ``seed`` and the name's CRC-32, so each tensor is independent of the others
    and of their order. Convolutions get He-normal weights; BatchNorm gets gamma in
    [0.5, 1.5], beta ~ N(0, 0.1), running mean ~ N(0, 0.2) and running variance in [0.5, 2]
    -- far enough from the identity (0 / 1) that a BatchNorm loaded into the wrong place, or
    not at all, changes the output. The last BatchNorm of each ResNet residual branch
    (``bn3``) gets gamma in [0.1, 0.3], so the 33 residual sums of ResNet-101 do not blow
    the activations up (logits stay within about +-100).
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode('utf-8'))])
    shape = tuple(int(size) for size in shape)
    leaf = name.rsplit('.', 1)[-1]
    if leaf == 'num_batches_tracked':
        return np.full(shape, 1000, dtype=dtype)
    if leaf == 'running_var':
        values = rng.uniform(0.5, 2.0, shape)
    elif leaf == 'running_mean':
        values = rng.normal(0.0, 0.2, shape)
    elif name.endswith('.bn3.weight'):  # last BatchNorm of a ResNet residual branch
        values = rng.uniform(0.1, 0.3, shape)
    elif leaf == 'weight' and len(shape) == 1:  # BatchNorm gamma
        values = rng.uniform(0.5, 1.5, shape)
    elif leaf == 'bias':
        values = rng.normal(0.0, 0.1, shape)
    elif leaf == 'weight' and len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        values = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    else:
        raise ValueError(f'no fixture recipe for {name} {shape}')
    return values.astype(dtype)


def fixture_image(seed: int) -> np.ndarray:
    """RGB uint8 (IMAGE_HEIGHT, IMAGE_WIDTH, 3): smooth colour blobs plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (IMAGE_HEIGHT // 16 + 1, IMAGE_WIDTH // 16 + 1, 3))
    rows = np.linspace(0, coarse.shape[0] - 1, IMAGE_HEIGHT)
    cols = np.linspace(0, coarse.shape[1] - 1, IMAGE_WIDTH)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, coarse.shape[0] - 1), np.minimum(c0 + 1, coarse.shape[1] - 1)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    smooth = ((1 - fr) * ((1 - fc) * coarse[r0][:, c0] + fc * coarse[r0][:, c1])
              + fr * ((1 - fc) * coarse[r1][:, c0] + fc * coarse[r1][:, c1]))
    noisy = smooth + rng.normal(0.0, 12.0, smooth.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def normalise(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (1, 3, H, W), ``(x / 255 - MEAN) / STD``."""
    scaled = image.astype(np.float32).transpose(2, 0, 1)[None] / np.float32(255.0)
    mean = np.asarray(MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return (scaled - mean) / std


@dataclass
class TorchvisionFixture:
    """What torchvision's network did, for one architecture.

    Attributes:
        arch: torchvision builder name (``fcn_resnet50`` ...).
        entries: (name, shape, dtype) of every state-dict tensor, in torchvision's order
            (``aux_classifier.*`` included: the networks were built with ``aux_loss``).
        seed: Seed of ``fixture_array``.
        image: RGB uint8 (H, W, 3), the input.
        logits: float32 (C, H, W) torchvision's ``out`` for the normalised image (stored
            as float16).
        argmax: uint8 (H, W) argmax of the float32 logits.
        versions: torch and torchvision versions that made the file.
    """

    arch: str
    entries: List[Entry]
    seed: int
    image: np.ndarray
    logits: np.ndarray
    argmax: np.ndarray
    versions: Dict[str, str]


def fixture_path(arch: str) -> str:
    return os.path.join(FIXTURE_DIR, f'{arch}.npz')


def save_fixture(fixture: TorchvisionFixture) -> str:
    """Write ``fixture_path(arch)``; returns the path."""
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    path = fixture_path(fixture.arch)
    meta = {'arch': fixture.arch, 'seed': fixture.seed, 'versions': fixture.versions,
            'entries': [[name, list(shape), dtype] for name, shape, dtype in fixture.entries]}
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), image=fixture.image,
                        logits=fixture.logits.astype(np.float16),
                        argmax=fixture.argmax.astype(np.uint8))
    return path


def load_fixture(arch: str) -> TorchvisionFixture:
    with np.load(fixture_path(arch)) as data:
        meta = json.loads(str(data['meta']))
        return TorchvisionFixture(
            arch=meta['arch'], seed=int(meta['seed']), versions=dict(meta['versions']),
            entries=[(name, tuple(shape), dtype) for name, shape, dtype in meta['entries']],
            image=data['image'], logits=data['logits'].astype(np.float32),
            argmax=data['argmax'])


def fixture_arrays(entries: Sequence[Entry], seed: int) -> Dict[str, np.ndarray]:
    """Every tensor of the state dict as numpy, by name (``fixture_array`` each)."""
    return {name: fixture_array(name, shape, dtype, seed) for name, shape, dtype in entries}


def fixture_state_dict(fixture: TorchvisionFixture) -> Dict[str, 'torch.Tensor']:  # noqa: F821
    """The state dict torchvision's network had when the fixture was made."""
    import torch
    return {name: torch.from_numpy(value)
            for name, value in fixture_arrays(fixture.entries, fixture.seed).items()}
