"""Re-export a zoo package's graph with today's exporter, only if its outputs do not change.

    .venv/bin/python scripts/reexport_zoo.py enet_panoptic [--frames 8] [--write]

The network comes from the package (``load_torch_network``: weights.pt, or the weights
recovered from model.onnx), the graph from ``export.onnx_export.export_onnx_bytes`` with the
package's own manifest (every setting kept). Both graphs run in ONNX Runtime on held-out
synthetic frames (seeds no training or validation run uses) at the network size; with
``--write`` the new model.onnx replaces the old one and the manifest's ``onnx_sha256`` line
is updated in place (nothing else in the manifest changes) when semantic, instance and
panoptic are pixel-equal and confidence and instance_score within 1e-5 on every frame.
Exit status 0 when equal, 1 when not (nothing written).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

#: Held-out synthetic scene seeds (training uses 0.., validation 1000003).
HELD_OUT_SEED = 777_001
FLOAT_TOLERANCE = 1e-5


def _session(model_bytes: bytes):
    import onnxruntime as ort

    from seg_perception.tools.efficiency import session_options
    return ort.InferenceSession(model_bytes, sess_options=session_options(2),
                                providers=['CPUExecutionProvider'])


def compare_graphs(old_bytes: bytes, new_bytes: bytes, manifest, frames: int) -> list:
    """Differences between the two graphs' outputs on held-out frames (empty when equal)."""
    import cv2

    from seg_perception.data.synthetic.generator import SceneGenerator
    old, new = _session(old_bytes), _session(new_bytes)
    generator = SceneGenerator(manifest.input_width, manifest.input_height, seed=HELD_OUT_SEED)
    problems = []
    for index in range(frames):
        image = generator.generate(index).image
        image = cv2.resize(image, (manifest.input_width, manifest.input_height))
        feeds = {'image': image.transpose(2, 0, 1)[None].astype(np.float32)}
        if manifest.is_panoptic:
            feeds['center_threshold'] = np.array([manifest.postprocess.center_threshold],
                                                 np.float32)
        names = list(manifest.output_names)
        for name, a, b in zip(names, old.run(names, feeds), new.run(names, feeds)):
            if a.dtype == np.float32:  # confidence, instance_score
                worst = float(np.abs(a - b).max()) if a.size else 0.0
                if worst > FLOAT_TOLERANCE:
                    problems.append(f'frame {index}: {name} differs by {worst:.2e}')
            elif not np.array_equal(a, b):
                problems.append(f'frame {index}: {name} differs at {int((a != b).sum())} '
                                'elements')
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('name', help='zoo model name or package directory')
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--write', action='store_true', help='replace model.onnx when equal')
    args = parser.parse_args(argv)
    import torch

    from seg_perception.export.graph import FusedSegmentationGraph
    from seg_perception.export.onnx_export import export_onnx_bytes, sha256_bytes
    from seg_perception.packages.atomic import atomic_write_bytes, atomic_write_text
    from seg_perception.packages.loading import load_model_package, load_torch_network
    from seg_perception.packages.zoo import resolve_model
    manifest, directory = load_model_package(resolve_model(args.name))
    network = load_torch_network(directory, manifest, 'cpu').float().eval()
    with torch.no_grad():
        new_bytes = export_onnx_bytes(FusedSegmentationGraph(network, manifest).eval(),
                                      manifest, manifest.opset or 17)
    path = manifest.onnx_path(directory)
    with open(path, 'rb') as handle:
        old_bytes = handle.read()
    if new_bytes == old_bytes:
        print(f'{manifest.name}: the exporter writes the same graph; nothing to do')
        return 0
    problems = compare_graphs(old_bytes, new_bytes, manifest, args.frames)
    if problems:
        print(f'{manifest.name}: outputs differ, not re-exported:\n  ' + '\n  '.join(problems))
        return 1
    print(f'{manifest.name}: outputs identical on {args.frames} held-out frames '
          f'({manifest.input_width}x{manifest.input_height}, seed {HELD_OUT_SEED})')
    if args.write:
        manifest_path = os.path.join(directory, 'manifest.yaml')
        text = open(manifest_path, encoding='utf-8').read()
        old_line = f'onnx_sha256: {manifest.onnx_sha256}'
        if text.count(old_line) != 1:
            print(f'{manifest_path}: no single {old_line!r} line', file=sys.stderr)
            return 1
        atomic_write_bytes(path, new_bytes)
        atomic_write_text(manifest_path,
                          text.replace(old_line, f'onnx_sha256: {sha256_bytes(new_bytes)}'))
        print(f'wrote {path} ({len(old_bytes)} -> {len(new_bytes)} bytes) and its sha256')
    return 0


if __name__ == '__main__':
    sys.exit(main())
