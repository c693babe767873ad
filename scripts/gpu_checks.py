"""GPU checks for the zoo models (run where CUDA exists): FP16 vs FP32 agreement and latency.

Usage: python3 scripts/gpu_checks.py ZOO_TRAIN_DIR
  ZOO_TRAIN_DIR holds enet/model and deeplab/model (scripts/train_zoo.sh output).
Prints, per model: pixel agreement of the torch backend in FP16 vs FP32 on held-out
synthetic frames, and Segmenter latency (torch CUDA FP32 / FP16) at 1024x512 and 2048x1024.
"""

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def agreement(package, frames=20):
    from seg_perception import Segmenter
    from seg_perception.data.synthetic import SYNTHETIC_TEST_SEED
    from seg_perception.data.synthetic.generator import SceneGenerator
    fp32 = Segmenter.from_package(package, backend='torch', device='cuda', precision='fp32')
    fp16 = Segmenter.from_package(package, backend='torch', device='cuda', precision='fp16')
    height, width = fp32.network_size
    generator = SceneGenerator(width, height, SYNTHETIC_TEST_SEED)
    same_semantic = same_panoptic = total = 0
    for index in range(frames):
        image = generator.generate(index).image
        a, b = fp32.segment(image), fp16.segment(image)
        same_semantic += int((a.semantic == b.semantic).sum())
        same_panoptic += int(((a.panoptic // 1000) == (b.panoptic // 1000)).sum())
        total += a.semantic.size
    return same_semantic / total, same_panoptic / total


def latency(package, precision):
    from seg_perception import Segmenter
    from seg_perception.tools.benchmark import run_benchmark
    segmenter = Segmenter.from_package(package, backend='torch', device='cuda',
                                       precision=precision)
    report = run_benchmark(segmenter, iterations=50, warmup=10)
    return report


def main():
    import torch

    from seg_perception.tools.benchmark import export_random_package
    root = sys.argv[1]
    print('GPU:', torch.cuda.get_device_name(0), 'torch', torch.__version__)
    for name, arch in (('enet', 'enet'), ('deeplab', 'deeplabv3plus_mobilenetv3')):
        package = os.path.join(root, name, 'model')
        if os.path.isdir(package):
            sem, pan = agreement(package)
            print(f'{name}: FP16 vs FP32 agreement on 20 held-out frames at 1024x512: '
                  f'semantic {100 * sem:.3f} %, panoptic class {100 * pan:.3f} %')
        for height, width in ((512, 1024), (1024, 2048)):
            with tempfile.TemporaryDirectory() as scratch:
                if (height, width) == (512, 1024) and os.path.isdir(package):
                    target = package
                else:
                    target = export_random_package(arch, 'panoptic', height, width, scratch)
                for precision in ('fp32', 'fp16'):
                    r = latency(target, precision)
                    print(f'{name} panoptic {width}x{height} torch cuda {precision}: '
                          f'total p50 {r.total.median_ms:.2f} ms p90 {r.total.p90_ms:.2f} ms, '
                          f'inference p50 {r.inference.median_ms:.2f} ms, '
                          f'pre {r.preprocess.median_ms:.2f} ms, '
                          f'post {r.postprocess.median_ms:.2f} ms, {r.fps:.1f} FPS')
                    sys.stdout.flush()


if __name__ == '__main__':
    np.seterr(all='ignore')
    main()
