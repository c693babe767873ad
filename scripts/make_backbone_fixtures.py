#!/usr/bin/env python3
"""Write the torchvision backbone fixtures of ``test/training/test_backbone_weights.py``.

Needs torchvision, which seg_perception never depends on; run it from a scratch venv::

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/tvenv/bin/python scripts/make_backbone_fixtures.py

For ``resnet18``, ``resnet50`` and ``mobilenet_v3_large`` (``weights=None``) it records the
ordered state-dict keys and shapes, loads ``backbone_fixtures.seeded_arrays`` into the
network (strictly), and runs it in eval mode and float64 on ``fixture_image``:

- ResNet: conv1 -> bn1 -> relu -> maxpool -> layer1..layer4 (the classifier's input before
  pooling), at output stride 32 and, for resnet50, 16 (``replace_stride_with_dilation=
  [False, False, True]``; torchvision's BasicBlock has no dilation, so resnet18 has 32 only);
- MobileNetV3-Large: ``features`` (up to the 1x1 conv to 960 channels) at output stride 32
  and 16 (``dilated=True``).

Each goes to ``test/fixtures/backbones/<arch>.npz`` (``backbone_fixtures.save_fixture``).
"""

from __future__ import annotations

import argparse
import os
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPOSITORY, 'test'))

import backbone_fixtures as fixtures  # noqa: E402
import numpy as np  # noqa: E402

#: Output strides recorded per architecture.
STRIDES = {'resnet18': (32,), 'resnet50': (32, 16), 'mobilenet_v3_large': (32, 16)}


def build(arch: str, output_stride: int):
    import torchvision.models as models
    if arch.startswith('resnet'):
        dilate = [False, False, output_stride == 16]
        return getattr(models, arch)(weights=None, replace_stride_with_dilation=dilate)
    return models.mobilenet_v3_large(weights=None, dilated=output_stride == 16)


def features(network, arch: str, image):
    """The encoder part of torchvision's classifier: its feature map before pooling."""
    if arch.startswith('resnet'):
        x = network.maxpool(network.relu(network.bn1(network.conv1(image))))
        for layer in (network.layer1, network.layer2, network.layer3, network.layer4):
            x = layer(x)
        return x
    return network.features(image)


def make_fixture(arch: str) -> fixtures.BackboneFixture:
    import torch
    import torchvision
    entries = [(key, tuple(value.shape))
               for key, value in build(arch, 32).state_dict().items()]
    arrays = fixtures.seeded_arrays(entries, fixtures.WEIGHTS_SEED)
    image = torch.from_numpy(fixtures.fixture_image(fixtures.IMAGE_SEED))
    results = {}
    for stride in STRIDES[arch]:
        network = build(arch, stride)
        network.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()},
                                strict=True)
        network = network.double().eval()
        with torch.no_grad():
            results[stride] = features(network, arch, image).numpy()
    return fixtures.BackboneFixture(
        arch=arch, entries=entries, weights_seed=fixtures.WEIGHTS_SEED,
        image_seed=fixtures.IMAGE_SEED, weights_checksum=fixtures.checksum(arrays),
        features=results,
        versions=f'torch {torch.__version__}, torchvision {torchvision.__version__}, '
                 f'numpy {np.__version__}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=fixtures.FIXTURE_DIR, help='fixture directory')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for arch in fixtures.ARCHITECTURES:
        fixture = make_fixture(arch)
        path = os.path.join(args.out, f'{arch}.npz')
        fixtures.save_fixture(fixture, path)
        shapes = ', '.join(f'OS{s} {tuple(v.shape)}' for s, v in fixture.features.items())
        print(f'{path}: {len(fixture.entries)} keys, {shapes}, '
              f'{os.path.getsize(path) // 1024} KiB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
