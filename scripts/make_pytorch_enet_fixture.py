#!/usr/bin/env python3
"""Write the PyTorch-ENet fixture of ``test/packages/test_import_pytorch_enet.py``.

Uses davidtvs/PyTorch-ENet's own ``models/enet.py`` (MIT licence), read from a checkout or a
bare git snapshot of that repository into a scratch directory (never copied into this
repository); it needs only torch::

    git clone https://github.com/davidtvs/PyTorch-ENet /tmp/PyTorch-ENet
    .venv/bin/python scripts/make_pytorch_enet_fixture.py --repo /tmp/PyTorch-ENet

It builds their ``ENet(num_classes=20)`` (the Cityscapes model: ``unlabeled`` + 19 classes)
with ``torch.manual_seed(SEED)``, gives it non-trivial weights (BatchNorm affine parameters
and PReLU slopes drawn at random, BatchNorm running statistics accumulated over random
smooth images in training mode), then in eval mode runs it on a fixed smooth RGB image
(``ToTensor()``: RGB / 255). Written to ``test/fixtures/pytorch_enet/``:

- ``enet_cityscapes_random.pth``: the checkpoint in their format (``{'epoch', 'miou',
  'state_dict', 'optimizer'}``, ``miou`` a numpy float64 as their ``main.py`` saves it);
- ``reference.npz``: ``image`` uint8 (H, W, 3), ``argmax`` uint8 (H, W) their prediction
  over all 20 channels, ``real_argmax`` uint8 (H, W) their prediction over channels 1..19
  minus 1 (train ids), ``margin`` float16 (H, W) the gap between the two largest of those
  19 logits;
- ``fixture.json``: provenance (their commit and ``enet.py`` sha256, seed, sizes, class
  histogram).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPOSITORY, 'test', 'fixtures', 'pytorch_enet')
SEED = 20240607
IMAGE_SEED = 11
HEIGHT, WIDTH = 96, 160
NUM_CLASSES = 20
CALIBRATION_BATCHES = 8


def enet_source(repo: str) -> tuple:
    """(source text of ``models/enet.py``, commit or None) from a checkout or git dir."""
    path = os.path.join(repo, 'models', 'enet.py')
    commit = None
    try:
        commit = subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as stream:
            return stream.read(), commit
    shown = subprocess.run(['git', '-C', repo, 'show', 'HEAD:models/enet.py'], check=True,
                           capture_output=True, text=True)
    return shown.stdout, commit


def load_their_enet(source: str, scratch: str):
    path = os.path.join(scratch, 'pytorch_enet_models_enet.py')
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write(source)
    spec = importlib.util.spec_from_file_location('pytorch_enet_models_enet', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ENet


def smooth_images(rng: np.random.Generator, count: int) -> np.ndarray:
    """uint8 (count, H, W, 3): random 6x10 colour grids, bilinearly enlarged, plus noise."""
    import torch
    import torch.nn.functional as F
    coarse = torch.from_numpy(rng.uniform(0, 255, (count, 3, 6, 10)).astype(np.float32))
    fine = F.interpolate(coarse, size=(HEIGHT, WIDTH), mode='bilinear', align_corners=False)
    fine = fine + torch.from_numpy(rng.normal(0, 8, fine.shape).astype(np.float32))
    return fine.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def to_tensor(images: np.ndarray):
    """Their ``transforms.ToTensor()`` on uint8 (N, H, W, 3): float (N, 3, H, W) / 255."""
    import torch
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)


def make_model(enet_class, rng: np.random.Generator):
    import torch
    from torch import nn
    torch.manual_seed(SEED)
    model = enet_class(NUM_CLASSES)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.6, 1.4)
                module.bias.uniform_(-0.2, 0.2)
                module.momentum = None  # cumulative average over the calibration batches
            elif isinstance(module, nn.PReLU):
                module.weight.uniform_(0.05, 0.4)
        model.train()
        for _ in range(CALIBRATION_BATCHES):
            model(to_tensor(smooth_images(rng, 2)))
    return model.eval()


def main(argv) -> int:
    import torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repo', required=True,
                        help='PyTorch-ENet checkout or bare git directory')
    parser.add_argument('--out', default=OUT_DIR, help='fixture directory (default: %(default)s)')
    args = parser.parse_args(argv)
    source, commit = enet_source(args.repo)
    rng = np.random.default_rng(IMAGE_SEED)
    with tempfile.TemporaryDirectory() as scratch:
        model = make_model(load_their_enet(source, scratch), rng)
    image = smooth_images(np.random.default_rng(IMAGE_SEED + 1), 1)[0]
    with torch.no_grad():
        logits = model(to_tensor(image[None]))[0]
    real = logits[1:]
    top2 = torch.topk(real, 2, dim=0).values
    os.makedirs(args.out, exist_ok=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=2e-4)
    checkpoint = {'epoch': 3, 'miou': np.float64(0.0421), 'state_dict': model.state_dict(),
                  'optimizer': optimizer.state_dict()}
    checkpoint_path = os.path.join(args.out, 'enet_cityscapes_random.pth')
    torch.save(checkpoint, checkpoint_path)
    argmax = logits.argmax(0).numpy().astype(np.uint8)
    np.savez_compressed(
        os.path.join(args.out, 'reference.npz'), image=image, argmax=argmax,
        real_argmax=real.argmax(0).numpy().astype(np.uint8),
        margin=(top2[0] - top2[1]).numpy().astype(np.float16))
    info = {
        'source': 'davidtvs/PyTorch-ENet models/enet.py (MIT), ENet(num_classes=20)',
        'commit': commit,
        'enet_py_sha256': hashlib.sha256(source.encode('utf-8')).hexdigest(),
        'torch': torch.__version__, 'seed': SEED, 'image_seed': IMAGE_SEED,
        'height': HEIGHT, 'width': WIDTH,
        'unlabeled_argmax_share': float(np.mean(argmax == 0)),
        'class_histogram': np.bincount(argmax.reshape(-1), minlength=NUM_CLASSES).tolist(),
        'regenerate': 'scripts/make_pytorch_enet_fixture.py --repo PYTORCH_ENET_CHECKOUT',
    }
    with open(os.path.join(args.out, 'fixture.json'), 'w', encoding='utf-8') as stream:
        json.dump(info, stream, indent=2)
        stream.write('\n')
    print(json.dumps(info, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
