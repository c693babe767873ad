#!/usr/bin/env python3
"""Full graph vs the graph pruned to the node's default outputs (no ``confidence``).

Two Segmenters of one package on ONNX Runtime CPU (the node's session settings), one with
every graph output and one loaded with ``outputs=`` (``packages.output_pruning``), are timed
in alternating rounds (A B A B ...) on the same camera-like image, so a slow minute of a
shared machine hits both alike: per round the Segmenter's inference time (the backend call)
and the whole ``segment`` call, wall and process CPU. Then ONNX Runtime's profiler splits
each graph's kernel time into network and post-processing (``tools.efficiency``; the pruned
graph is written to a temporary file for it), again in alternating rounds, keeping each
graph's round with the median total.

    .venv/bin/python scripts/measure_output_pruning.py               # zoo ENet panoptic
    .venv/bin/python scripts/measure_output_pruning.py --runs 30 --threads 4 --package DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from seg_perception.packages.loading import load_model_package  # noqa: E402
from seg_perception.packages.output_pruning import pruned_onnx_file  # noqa: E402
from seg_perception.pipeline.graph_outputs import DEFAULT_GRAPH_OUTPUTS  # noqa: E402
from seg_perception.segmenter import Segmenter  # noqa: E402
from seg_perception.tools.benchmark import benchmark_image  # noqa: E402
from seg_perception.tools.efficiency import GraphProfile, profile_graph  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO_ENET = os.path.join(ROOT, 'seg_perception', 'zoo', 'enet_panoptic')
COLUMNS = ('inference_ms', 'segment_ms', 'segment_cpu_ms')


def time_alternating(segmenters: Dict[str, Segmenter], image: np.ndarray, runs: int,
                     warmup: int) -> Dict[str, np.ndarray]:
    """name -> float64 (runs, 3): inference ms, segment ms, segment process-CPU ms; the
    Segmenters take turns frame by frame."""
    for _ in range(warmup):
        for segmenter in segmenters.values():
            segmenter.segment(image)
    samples = {name: np.zeros((runs, len(COLUMNS))) for name in segmenters}
    for index in range(runs):
        for name, segmenter in segmenters.items():
            cpu, wall = time.process_time(), time.perf_counter()
            result = segmenter.segment(image)
            samples[name][index] = (result.timing.inference_ms,
                                    (time.perf_counter() - wall) * 1e3,
                                    (time.process_time() - cpu) * 1e3)
    return samples


def profile_row(name: str, profile: GraphProfile) -> str:
    ops = ', '.join(f'{op} {ms:.1f}' for op, ms in profile.by_op[:6])
    return (f'| {name} | {profile.total_ms:.1f} | {profile.network_ms:.1f} | '
            f'{profile.postprocess_ms:.1f} | {100 * profile.postprocess_share:.1f} % | {ops} |')


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--package', default=ZOO_ENET, help='model package (default: zoo ENet '
                                                            'panoptic, 1024x512)')
    parser.add_argument('--threads', type=int, default=2, help='intra-op threads (default 2)')
    parser.add_argument('--runs', type=int, default=20, help='timed rounds (default 20)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed rounds first')
    parser.add_argument('--profile-runs', type=int, default=8,
                        help='profiled runs per graph and round (default 8)')
    parser.add_argument('--profile-rounds', type=int, default=3,
                        help='alternating profile rounds (default 3)')
    parser.add_argument('--outputs', nargs='+', default=list(DEFAULT_GRAPH_OUTPUTS),
                        help='graph outputs of the pruned graph (default: what the node '
                             'computes with default parameters)')
    args = parser.parse_args(argv)
    if args.runs < 15:
        parser.error('--runs must be at least 15 (medians of fewer rounds are noise)')
    manifest, directory = load_model_package(args.package)
    options = dict(backend='onnxruntime', device='cpu', threads=args.threads)
    segmenters = {'full': Segmenter.from_package(directory, **options),
                  'pruned': Segmenter.from_package(directory, outputs=args.outputs, **options)}
    pruned_outputs = segmenters['pruned'].graph_outputs
    print(f'{manifest.name} {manifest.input_width}x{manifest.input_height} on ONNX Runtime '
          f'CPU, {args.threads} threads, {os.cpu_count()} CPUs; pruned: '
          f'{segmenters["pruned"].backend.info.detail.split("; ")[-1]}')
    image = benchmark_image(manifest.input_height, manifest.input_width)
    try:
        samples = time_alternating(segmenters, image, args.runs, args.warmup)
    finally:
        for segmenter in segmenters.values():
            segmenter.close()
    medians = {name: np.median(values, axis=0) for name, values in samples.items()}
    print(f'\nmedian of {args.runs} alternating rounds (A B A B ...), ms:\n')
    print('| graph | outputs | inference | segment() | segment() CPU (all threads) |')
    print('|---|---|---:|---:|---:|')
    for name, outputs in (('full', manifest.output_names), ('pruned', pruned_outputs)):
        row = ' | '.join(f'{v:.1f}' for v in medians[name])
        print(f'| {name} | {", ".join(outputs)} | {row} |')
    saved = medians['full'] - medians['pruned']
    share = 100 * saved / medians['full']
    print('| saved | | ' + ' | '.join(f'{s:.1f} ({p:.1f} %)' for s, p in zip(saved, share))
          + ' |')
    paired = samples['full'] - samples['pruned']
    print('| saved, per round (median of full - pruned) | | '
          + ' | '.join(f'{v:.1f}' for v in np.median(paired, axis=0)) + ' |')
    print(f'\npruned faster in {int((paired[:, 0] > 0).sum())} of {args.runs} rounds '
          '(inference); on a busy machine the per-round differences are the steadier measure')
    onnx_path = manifest.onnx_path(directory)
    rounds: Dict[str, List[GraphProfile]] = {'full': [], 'pruned': []}
    with pruned_onnx_file(onnx_path, pruned_outputs) as (path, _):
        for _ in range(args.profile_rounds):
            for name, graph in (('full', onnx_path), ('pruned', path)):
                rounds[name].append(profile_graph(graph, threads=args.threads,
                                                  runs=args.profile_runs))
    profiles = {name: sorted(found, key=lambda p: p.total_ms)[len(found) // 2]
                for name, found in rounds.items()}
    print(f'\nONNX Runtime profile (kernel time per run: median of {args.profile_runs} runs, '
          f'the median-total round of {args.profile_rounds} alternating), ms:\n')
    print('| graph | kernels | network | post-processing | share | largest post-processing '
          'ops |')
    print('|---|---:|---:|---:|---:|---|')
    for name, profile in profiles.items():
        print(profile_row(name, profile))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
