#!/usr/bin/env python3
"""Several ONNX graphs of one model timed in alternating rounds, then profiled.

    .venv/bin/python scripts/measure_graph_speed.py \
        before=/tmp/old/model.onnx after=pkg/model.onnx \
        'after, node outputs=pkg/model.onnx:semantic,instance,panoptic,instance_score'

Each argument is ``LABEL=PATH`` or ``LABEL=PATH:OUT1,OUT2,...`` (the graph pruned to those
outputs by ``packages.output_pruning``, as the node loads it). Every graph runs in ONNX
Runtime with the onnxruntime backend's CPU session settings on the same random feeds; the
rounds alternate (A B C A B C ...) so a slow minute of a shared machine hits all alike.
Printed per graph: median and p90 of the ``run`` wall time, and from ONNX Runtime's profiler
(``tools.efficiency.profile_graph``) the kernel time split into network and post-processing
with the post-processing's largest ops. With ``--gflops G`` (the network's GFLOPs, e.g. from
``seg-perception bench --efficiency``) the network's achieved rate against this machine's
measured 3x3 conv rate is printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from seg_perception.packages.output_pruning import prune_onnx_bytes  # noqa: E402
from seg_perception.tools.efficiency import (  # noqa: E402
    graph_feeds,
    machine_rates,
    profile_graph,
    session_options,
)


def load_graph(spec: str) -> Tuple[str, bytes]:
    """``LABEL=PATH[:OUTPUTS]`` -> (label, model bytes, pruned when outputs are given)."""
    label, _, rest = spec.partition('=')
    path, _, outputs = rest.partition(':')
    if not label or not path:
        raise SystemExit(f'{spec!r}: expected LABEL=PATH or LABEL=PATH:OUT1,OUT2')
    with open(path, 'rb') as stream:
        data = stream.read()
    if outputs:
        data, _ = prune_onnx_bytes(data, outputs.split(','), os.path.dirname(path))
    return label, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('graphs', nargs='+', help='LABEL=PATH[:OUT1,OUT2,...]')
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--profile-runs', type=int, default=10)
    parser.add_argument('--gflops', type=float, default=0.0,
                        help="the network's GFLOPs per frame, for the conv-rate share")
    args = parser.parse_args()
    import onnxruntime as ort
    graphs = dict(load_graph(spec) for spec in args.graphs)
    sessions = {label: ort.InferenceSession(data, sess_options=session_options(args.threads),
                                            providers=['CPUExecutionProvider'])
                for label, data in graphs.items()}
    feeds = {label: graph_feeds(session) for label, session in sessions.items()}
    times: Dict[str, List[float]] = {label: [] for label in sessions}
    for label, session in sessions.items():  # warm-up
        for _ in range(2):
            session.run(None, feeds[label])
    for _ in range(args.rounds):
        for label, session in sessions.items():
            start = time.perf_counter()
            session.run(None, feeds[label])
            times[label].append((time.perf_counter() - start) * 1e3)
    conv_rate = machine_rates(args.threads)['conv'] if args.gflops else 0.0
    print(f'{args.rounds} alternating rounds, ONNX Runtime CPU, {args.threads} threads')
    first = None
    for label, data in graphs.items():
        median = float(np.median(times[label]))
        first = first or median
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, 'model.onnx')
            with open(path, 'wb') as stream:
                stream.write(data)
            profile = profile_graph(path, args.threads, args.profile_runs)
        top = ', '.join(f'{op} {ms:.1f}' for op, ms in profile.by_op[:6])
        print(f'{label}: run median {median:.1f} ms (p90 {np.percentile(times[label], 90):.1f}),'
              f' speed-up vs {next(iter(graphs))} x{first / median:.2f}')
        print(f'    kernel {profile.total_ms:.1f} ms = network {profile.network_ms:.1f} + '
              f'post-processing {profile.postprocess_ms:.1f} '
              f'({100 * profile.postprocess_share:.1f} %); post-processing ops (ms): {top}')
        if args.gflops:
            rate = args.gflops / (profile.network_ms / 1e3)
            print(f'    network {rate:.0f} GFLOP/s = {100 * rate / conv_rate:.0f} % of the '
                  f'measured 3x3 conv rate ({conv_rate:.0f} GFLOP/s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
