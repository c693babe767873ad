#!/usr/bin/env python3
"""FP16 vs FP32 agreement of a model package on held-out synthetic frames, on any device.

The package's torch weights run through ``FusedSegmentationGraph`` (the exported graph's
module) once in float32 and once in float16, post-processing in float32 both times, on the
held-out test seed that ``seg-perception score`` uses. Prints the share of pixels whose
semantic class, and whose panoptic class, agree. On the CPU, torch runs float16
convolutions slowly but exactly as specified, so the figure needs no GPU.

    .venv/bin/python scripts/fp16_agreement.py seg_perception/zoo/enet_panoptic --frames 20
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))


def main(argv) -> int:
    import torch

    from seg_perception.data.synthetic import SYNTHETIC_TEST_SEED
    from seg_perception.data.synthetic.generator import SceneGenerator
    from seg_perception.export.graph import FusedSegmentationGraph
    from seg_perception.packages.loading import load_model_package, load_torch_network
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('package')
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    manifest, package_dir = load_model_package(args.package)
    device = torch.device(args.device)
    graphs = {}
    for dtype in (torch.float32, torch.float16):
        network = load_torch_network(package_dir, manifest, device).to(dtype)
        graphs[dtype] = FusedSegmentationGraph(network, manifest).to(device).eval()
    generator = SceneGenerator(manifest.input_width, manifest.input_height, SYNTHETIC_TEST_SEED)
    names = list(manifest.output_names)
    same_semantic = same_panoptic = total = 0
    for index in range(args.frames):
        image = generator.generate(index).image
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))[None])
        tensor = tensor.to(device=device, dtype=torch.float32)
        with torch.inference_mode():
            full, half = (dict(zip(names, graphs[d](tensor))) for d in graphs)
        same_semantic += int((full['semantic'] == half['semantic']).sum())
        if 'panoptic' in full:
            divisor = manifest.label_divisor
            same_panoptic += int(((full['panoptic'] // divisor)
                                  == (half['panoptic'] // divisor)).sum())
        total += full['semantic'].numel()
    line = (f'{manifest.name}: FP16 vs FP32 on {args.frames} held-out frames '
            f'({manifest.input_width}x{manifest.input_height}, torch {torch.__version__} '
            f'{args.device}): semantic {100 * same_semantic / total:.3f} %')
    if 'panoptic' in names:
        line += f', panoptic class {100 * same_panoptic / total:.3f} %'
    print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
