"""One small imported model package per importer, for the end-to-end tests.

``build_imported_packages(root)`` runs ``seg-perception import`` (the command line, in
process) on one model per source and returns what each package is expected to predict:

    onnx           ``TinySegNet`` (test/packages/onnx_import_graphs.py), 11 CamVid classes,
                   stride 8, exported by torch's TorchScript exporter at 64x48 and imported
                   with torchvision's normalisation flags
    torchvision    ``lraspp_mobilenet_v3_large`` rebuilt from test/fixtures/torchvision
                   (21 VOC classes), imported at the fixture's 96x64
    pytorch_enet   test/fixtures/pytorch_enet's Cityscapes checkpoint, imported at 160x96

Each comes with the source framework's own prediction on one image at the package's
network size (so the Segmenter's resize is the identity there).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import sys
from typing import Dict

import numpy as np

TEST_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCES = ('onnx', 'torchvision', 'pytorch_enet')
#: The label set each source's package is imported with.
LABEL_SETS = {'onnx': 'camvid', 'torchvision': 'voc', 'pytorch_enet': 'cityscapes'}
ONNX_SIZE = (64, 48)  # (width, height)
TORCHVISION_ARCH = 'lraspp_mobilenet_v3_large'
ENET_SIZE = (160, 96)
ENET_FIXTURE = os.path.join(TEST_DIR, 'fixtures', 'pytorch_enet')
TORCHVISION_FLAGS = ['--input-range', '0-1', '--mean', '0.485', '0.456', '0.406',
                     '--std', '0.229', '0.224', '0.225']


@dataclass
class ImportedPackage:
    """A package written by ``seg-perception import`` and what its source predicts.

    Attributes:
        source: ``onnx``, ``torchvision`` or ``pytorch_enet``.
        path: The package directory.
        labels: Name of its label set.
        image: RGB uint8 (H, W, 3) at the network size.
        expected: (H, W) class ids the source framework predicts for ``image``.
    """

    source: str
    path: str
    labels: str
    image: np.ndarray
    expected: np.ndarray


def _cli(argv) -> None:
    from seg_perception.cli import main
    status = main(argv)
    if status != 0:
        raise AssertionError(f'seg-perception {" ".join(argv)} exited {status}')


def _onnx(root: str) -> ImportedPackage:
    packages_dir = os.path.join(TEST_DIR, 'packages')
    if packages_dir not in sys.path:
        sys.path.insert(0, packages_dir)
    from onnx_import_graphs import (  # test/packages, beside the ONNX importer's tests
        export_torchscript,
        manual_input,
        reference_prediction,
        TinySegNet,
    )
    import torch
    width, height = ONNX_SIZE
    norm = dict(input_range='0-1', mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(5)]
    calibration = torch.from_numpy(np.concatenate([manual_input(i, **norm) for i in images]))
    network = TinySegNet(11, stride=8, calibration=calibration[:4])
    source = export_torchscript(network, os.path.join(root, 'tiny_camvid.onnx'),
                                calibration[:1], 17)
    out = os.path.join(root, 'onnx')
    _cli(['import', 'onnx', source, '--out', out, '--labels', LABEL_SETS['onnx'],
          '--name', 'tiny_camvid'] + TORCHVISION_FLAGS)
    expected, _ = reference_prediction(source, manual_input(images[4], **norm),
                                       (height, width))
    return ImportedPackage('onnx', out, LABEL_SETS['onnx'], images[4], expected[0])


def _torchvision(root: str) -> ImportedPackage:
    import torch
    from torchvision_fixtures import fixture_state_dict, load_fixture
    fixture = load_fixture(TORCHVISION_ARCH)
    checkpoint = os.path.join(root, f'{TORCHVISION_ARCH}.pth')
    torch.save(fixture_state_dict(fixture), checkpoint)
    out = os.path.join(root, 'torchvision')
    width, height = fixture.image.shape[1], fixture.image.shape[0]
    _cli(['import', 'torchvision', checkpoint, '--arch', TORCHVISION_ARCH, '--out', out,
          '--input-size', f'{width}x{height}'])
    return ImportedPackage('torchvision', out, LABEL_SETS['torchvision'], fixture.image,
                           fixture.argmax)


def _pytorch_enet(root: str) -> ImportedPackage:
    out = os.path.join(root, 'pytorch_enet')
    _cli(['import', 'pytorch-enet', os.path.join(ENET_FIXTURE, 'enet_cityscapes_random.pth'),
          '--dataset', 'cityscapes', '--out', out, '--input-size', '%dx%d' % ENET_SIZE])
    with np.load(os.path.join(ENET_FIXTURE, 'reference.npz')) as reference:
        image, expected = reference['image'], reference['real_argmax']
    return ImportedPackage('pytorch_enet', out, LABEL_SETS['pytorch_enet'], image, expected)


def build_imported_packages(root: str) -> Dict[str, ImportedPackage]:
    """Import one model per source under ``root`` (a few seconds on one core)."""
    return {'onnx': _onnx(root), 'torchvision': _torchvision(root),
            'pytorch_enet': _pytorch_enet(root)}
