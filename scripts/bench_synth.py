#!/usr/bin/env python3
"""How fast the synthetic street generator draws frames on one core.

Draws ``--frames`` frames (after ``--warmup`` untimed ones) with OpenCV and the BLAS
limited to one thread, and prints the median and mean wall time and process CPU time per
frame, and the frames per second they imply. Process CPU time is the steadier figure on a
shared machine: another process on the same core slows the wall clock, not the CPU time
(though not what a shared VM's neighbours do to caches and clocks: repeat the run).
Pin it to one core for the issue's figure:

    taskset -c 0 .venv/bin/python scripts/bench_synth.py --size 1024x512 --frames 50
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List

os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from seg_perception.commands.synth import parse_size  # noqa: E402
from seg_perception.data.synthetic.generator import SceneGenerator  # noqa: E402


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='1024x512', help='WxH')
    parser.add_argument('--frames', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    width, height = parse_size(args.size)
    cv2.setNumThreads(1)
    generator = SceneGenerator(width, height, seed=args.seed)
    for index in range(args.warmup):
        generator.generate(index)
    wall, cpu = [], []
    for index in range(args.warmup, args.warmup + args.frames):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        generator.generate(index)
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    for name, times in (('wall', wall), ('process CPU', cpu)):
        median, mean = 1e3 * float(np.median(times)), 1e3 * float(np.mean(times))
        print(f'{name:12s} {width}x{height}: median {median:.1f} ms, mean {mean:.1f} ms per '
              f'frame = {1e3 / mean:.1f} frames/s ({args.frames} frames, seed {args.seed})')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
