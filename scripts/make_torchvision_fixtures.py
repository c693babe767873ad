#!/usr/bin/env python3
"""Write the torchvision fixtures of ``test/packages/test_import_torchvision.py``.

Needs torchvision, which seg_perception never depends on; run it from a scratch venv::

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/tvenv/bin/python scripts/make_torchvision_fixtures.py

For each of torchvision's six segmentation builders it builds the network
(``weights=None, weights_backbone=None, num_classes=21``, ``aux_loss=True`` where the builder
has it), fills every state-dict tensor with ``torchvision_fixtures.fixture_array`` (BatchNorm
running statistics included), runs it in eval mode on ``fixture_image`` and writes
``test/fixtures/torchvision/<arch>.npz``: the tensor names / shapes / dtypes, the seed, the
image and torchvision's logits (float16) and argmax. No weights are stored: the test
regenerates them from the names and the seed.
"""

from __future__ import annotations

import argparse
import os
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPOSITORY, 'test'))

import numpy as np  # noqa: E402
import torchvision_fixtures as fixtures  # noqa: E402

SEED = 20240601
IMAGE_SEED = 7


def build(arch: str):
    import torchvision.models.segmentation as segmentation
    extra = {} if arch.startswith('lraspp') else {'aux_loss': True}
    return getattr(segmentation, arch)(weights=None, weights_backbone=None,
                                       num_classes=fixtures.NUM_CLASSES, **extra)


def make(arch: str) -> str:
    import torch
    import torchvision
    model = build(arch).eval()
    entries = [(name, tuple(value.shape), str(value.dtype).replace('torch.', ''))
               for name, value in model.state_dict().items()]
    arrays = fixtures.fixture_arrays(entries, SEED)
    model.load_state_dict({name: torch.from_numpy(value) for name, value in arrays.items()},
                          strict=True)
    image = fixtures.fixture_image(IMAGE_SEED)
    with torch.no_grad():
        logits = model(torch.from_numpy(fixtures.normalise(image)))['out'][0].numpy()
    ordered = np.sort(logits, axis=0)
    margin = ordered[-1] - ordered[-2]
    argmax = logits.argmax(axis=0)
    print(f'{arch}: {len(entries)} tensors, logits {logits.min():.2f}..{logits.max():.2f}, '
          f'{len(np.unique(argmax))} classes predicted, top-2 margin < 1e-3 on '
          f'{np.mean(margin < 1e-3):.4%} of pixels')
    fixture = fixtures.TorchvisionFixture(
        arch=arch, entries=entries, seed=SEED, image=image, logits=logits,
        argmax=argmax.astype(np.uint8),
        versions={'torch': torch.__version__, 'torchvision': torchvision.__version__})
    return fixtures.save_fixture(fixture)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('archs', nargs='*', default=list(fixtures.ARCHITECTURES),
                        help='torchvision builders (default: all six)')
    args = parser.parse_args()
    import torch
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    for arch in args.archs:
        path = make(arch)
        print(f'  wrote {os.path.relpath(path, REPOSITORY)} ({os.path.getsize(path)} bytes)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
