#!/usr/bin/env python3
"""The README's CPU benchmark table: semantic and panoptic exports timed in alternating rounds.

For every model and network size it exports both tasks (random weights: speed does not
depend on them), builds one ``Segmenter`` each on the chosen backend and times them with
``benchmark.run_benchmark`` (the path the node uses) round by round, semantic then
panoptic, so that a slow minute of a shared machine hits both alike. It prints one Markdown
row per model, size and task, then the panoptic / semantic ratios of the median wall time
and of the median process CPU time (the steadier of the two on a noisy machine).

    .venv/bin/python scripts/bench_cpu.py                      # ENet + DeepLabv3+ MNv3
    .venv/bin/python scripts/bench_cpu.py --models enet --sizes 512x256 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Dict, List, Tuple

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from seg_perception.segmenter import Segmenter  # noqa: E402
from seg_perception.tools.benchmark import export_random_package, run_benchmark  # noqa: E402

TASKS = ('semantic', 'panoptic')


def parse_size(text: str) -> Tuple[int, int]:
    width, height = (int(v) for v in text.lower().split('x'))
    return height, width


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=['enet', 'deeplabv3plus_mobilenetv3'])
    parser.add_argument('--sizes', nargs='+', default=['512x256', '1024x512'], help='WxH')
    parser.add_argument('--backend', default='onnxruntime')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iterations', type=int, default=10, help='timed frames per round')
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args(argv)

    print('| model | network size | task | pre ms | inference ms | post ms | total p50 / p90 ms '
          '| FPS | outside backend | CPU ms / frame |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    ratios = []
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models:
            for size in args.sizes:
                height, width = parse_size(size)
                segmenters: Dict[str, Segmenter] = {}
                for task in TASKS:
                    package = export_random_package(
                        model, task, height, width, os.path.join(scratch, f'{model}_{task}'))
                    options = {} if args.threads is None else {'threads': args.threads}
                    segmenters[task] = Segmenter.from_package(package, backend=args.backend,
                                                              **options)
                samples = {task: [] for task in TASKS}
                for round_index in range(args.rounds):
                    for task in TASKS:
                        report = run_benchmark(segmenters[task], iterations=args.iterations,
                                               warmup=2 if round_index else 5)
                        samples[task].append(report)
                medians = {}
                for task in TASKS:
                    reports = samples[task]

                    def median(field: str, stat: str = 'median_ms') -> float:
                        return float(np.median([getattr(getattr(r, field), stat)
                                                for r in reports]))
                    total, cpu = median('total'), median('cpu_total')
                    outside = float(np.median([r.outside_backend_share for r in reports]))
                    medians[task] = (total, cpu)
                    print(f'| {model} | {width}×{height} | {task} | {median("preprocess"):.2f} '
                          f'| {median("inference"):.1f} | {median("postprocess"):.2f} '
                          f'| {total:.1f} / {median("total", "p90_ms"):.1f} '
                          f'| {1000.0 / total:.1f} | {100 * outside:.1f} % | {cpu:.1f} |',
                          flush=True)
                ratios.append((model, width, height,
                               medians['panoptic'][0] / medians['semantic'][0],
                               medians['panoptic'][1] / medians['semantic'][1]))
                for segmenter in segmenters.values():
                    segmenter.close()
    print()
    for model, width, height, wall, cpu in ratios:
        print(f'panoptic / semantic, {model} {width}x{height}: {wall:.2f}x wall, {cpu:.2f}x CPU')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
