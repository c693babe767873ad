"""How close a model package runs to the machine's limit (``seg-perception bench --efficiency``).

Three measurements, all with ONNX Runtime's CPU provider and the backend's session settings:

* ``machine_rates``: achieved FP32 GFLOP/s of a large matmul and of a 128-channel 3x3
  convolution, each a one-node graph run at the given thread count (the best of a few runs:
  the reachable rate, not a typical one).
* ``profile_graph``: the per-node kernel times from ONNX Runtime's profiler
  (``SessionOptions.enable_profiling``) for a package's graph; nodes whose name contains
  ``/postprocess/`` (the exporter names the nodes by module path, and ONNX Runtime keeps
  the name of the first node of a fused group) are the post-processing, everything else
  (the network, normalisation and the layout reorders ONNX Runtime inserts) the network.
* ``package_gflops``: FLOPs of the package's network from ``models.complexity`` (convolutions
  and matmuls, 2 x MACs), so achieved GFLOP/s = GFLOPs / (network kernel time).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
import json
import os
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..manifest import ModelManifest

POSTPROCESS_SCOPE = '/postprocess/'


@dataclass
class GraphProfile:
    """Kernel time of one graph per run, split into network and post-processing.

    Attributes:
        total_ms: Summed kernel time of all nodes per run (median over runs).
        postprocess_ms: The part of ``total_ms`` in ``/postprocess/`` nodes.
        by_op: (op type, ms per run) of the post-processing nodes, largest first.
        network_by_op: The same for the other nodes.
        runs: Profiled runs (after one untimed run).
    """

    total_ms: float
    postprocess_ms: float
    by_op: List[Tuple[str, float]] = field(default_factory=list)
    network_by_op: List[Tuple[str, float]] = field(default_factory=list)
    runs: int = 0

    @property
    def network_ms(self) -> float:
        return self.total_ms - self.postprocess_ms

    @property
    def postprocess_share(self) -> float:
        return self.postprocess_ms / self.total_ms if self.total_ms > 0 else 0.0


def session_options(threads: int, profile_prefix: Optional[str] = None):
    """ONNX Runtime session options as the onnxruntime backend sets them (CPU)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_mem_pattern = False
    options.add_session_config_entry('session.intra_op.allow_spinning', '1')
    options.add_session_config_entry('session.force_spinning_stop', '1')
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def graph_feeds(session, seed: int = 0) -> Dict[str, np.ndarray]:
    """Random inputs for every graph input: images 0..255, a 0.2 centre threshold."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in session.get_inputs():
        shape = [int(d) for d in value.shape]
        if value.name == 'center_threshold':
            feeds[value.name] = np.full(shape, 0.2, np.float32)
        else:
            feeds[value.name] = (rng.random(shape, dtype=np.float32) * 255.0)
    return feeds


def profile_graph(onnx_path: str, threads: int = 2, runs: int = 10,
                  feeds: Optional[Dict[str, np.ndarray]] = None) -> GraphProfile:
    """Profile ``runs`` runs of the graph at ``onnx_path`` (see the module docstring)."""
    import onnxruntime as ort
    with tempfile.TemporaryDirectory(prefix='seg_perception_profile_') as scratch:
        options = session_options(threads, os.path.join(scratch, 'profile'))
        session = ort.InferenceSession(onnx_path, sess_options=options,
                                       providers=['CPUExecutionProvider'])
        feeds = feeds if feeds is not None else graph_feeds(session)
        for _ in range(runs + 1):
            session.run(None, feeds)
        with open(session.end_profiling(), encoding='utf-8') as handle:
            events = json.load(handle)
    return summarize_profile(events)


def summarize_profile(events: List[dict]) -> GraphProfile:
    """``GraphProfile`` of ONNX Runtime profiler events; the first run is skipped."""
    per_run = _regroup(events)[1:]
    if not per_run:
        return GraphProfile(0.0, 0.0, runs=0)
    totals = np.array([sum(run.values()) for run in per_run])
    posts = np.array([sum(v for (p, _), v in run.items() if p) for run in per_run])
    middle = int(np.argsort(totals)[len(totals) // 2])
    ops: Dict[Tuple[bool, str], float] = defaultdict(float)
    for run in per_run:
        for key, value in run.items():
            ops[key] += value / len(per_run)
    by_op = sorted(((op, ms) for (p, op), ms in ops.items() if p), key=lambda x: -x[1])
    network = sorted(((op, ms) for (p, op), ms in ops.items() if not p), key=lambda x: -x[1])
    return GraphProfile(float(totals[middle]), float(posts[middle]), by_op, network,
                        len(per_run))


def _regroup(events: List[dict]) -> List[Dict[Tuple[bool, str], float]]:
    """Node kernel times per run, assigning each node event to the run whose span holds it."""
    spans = sorted((e['ts'], e['ts'] + e['dur']) for e in events
                   if e.get('cat') == 'Session' and e.get('name') == 'model_run')
    runs: List[Dict[Tuple[bool, str], float]] = [defaultdict(float) for _ in spans]
    starts = np.array([s for s, _ in spans])
    for event in events:
        if event.get('cat') != 'Node' or not event.get('name', '').endswith('_kernel_time'):
            continue
        index = int(np.searchsorted(starts, event['ts'], side='right')) - 1
        if index < 0 or event['ts'] > spans[index][1]:
            continue
        key = (POSTPROCESS_SCOPE in event['name'], event.get('args', {}).get('op_name', '?'))
        runs[index][key] += event['dur'] / 1e3
    return runs


def _best_rate(model_bytes: bytes, feeds: Dict[str, np.ndarray], flops: float, threads: int,
               repeats: int) -> float:
    import onnxruntime as ort
    session = ort.InferenceSession(model_bytes, sess_options=session_options(threads),
                                   providers=['CPUExecutionProvider'])
    session.run(None, feeds)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def machine_rates(threads: int = 2, repeats: int = 10) -> Dict[str, float]:
    """Reachable FP32 GFLOP/s on this machine: ``matmul`` (2048 x 2048 x 2048) and ``conv``
    (128 -> 128 channels, 3x3, on a (1, 128, 128, 256) map), ONNX Runtime CPU."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    rng = np.random.default_rng(0)
    n = 2048
    weight = numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), 'w')
    matmul = helper.make_model(helper.make_graph(
        [helper.make_node('MatMul', ['x', 'w'], ['y'])], 'matmul',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [n, n])], [weight]),
        opset_imports=[helper.make_opsetid('', 17)])
    rates = {'matmul': _best_rate(matmul.SerializeToString(),
                                  {'x': rng.standard_normal((n, n), dtype=np.float32)},
                                  2.0 * n ** 3, threads, repeats)}
    channels, height, width = 128, 128, 256
    kernel = numpy_helper.from_array(
        rng.standard_normal((channels, channels, 3, 3), dtype=np.float32) * 0.05, 'k')
    conv = helper.make_model(helper.make_graph(
        [helper.make_node('Conv', ['x', 'k'], ['y'], pads=[1, 1, 1, 1])], 'conv',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, channels, height, width])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, channels, height, width])],
        [kernel]), opset_imports=[helper.make_opsetid('', 17)])
    onnx.checker.check_model(conv)
    image = rng.standard_normal((1, channels, height, width), dtype=np.float32)
    rates['conv'] = _best_rate(conv.SerializeToString(), {'x': image},
                               2.0 * channels * channels * 9 * height * width, threads, repeats)
    return rates


def package_gflops(manifest: ModelManifest) -> float:
    """GFLOPs (2 x MACs / 1e9) of the package's network at its input size and batch."""
    import torch

    from ..models.complexity import count_gflops
    from ..models.registry import build_model
    with torch.device('meta'):
        network = build_model(manifest.architecture, num_classes=manifest.label_set.num_classes,
                              panoptic=manifest.is_panoptic, **manifest.architecture_kwargs)
    return count_gflops(network, manifest.input_height, manifest.input_width, manifest.batch)


def format_efficiency(gflops: float, profile: GraphProfile, rates: Dict[str, float],
                      end_to_end_ms: Optional[float] = None) -> str:
    """Lines for ``bench --efficiency``."""
    network_rate = gflops / (profile.network_ms / 1e3) if profile.network_ms > 0 else 0.0
    lines = [f'  efficiency: {gflops:.2f} GFLOPs per frame (network convolutions / matmuls)',
             f'    machine (ONNX Runtime FP32): matmul {rates["matmul"]:.0f} GFLOP/s, '
             f'3x3 conv {rates["conv"]:.0f} GFLOP/s']
    if end_to_end_ms:
        overall = gflops / (end_to_end_ms / 1e3)
        lines.append(f'    end to end {end_to_end_ms:.1f} ms: {overall:.0f} GFLOP/s '
                     f'= {100 * overall / rates["conv"]:.0f} % of the conv rate')
    lines.append(f'    profiled kernel time {profile.total_ms:.1f} ms per frame '
                 f'(median of {profile.runs}): network {profile.network_ms:.1f} ms '
                 f'({network_rate:.0f} GFLOP/s = {100 * network_rate / rates["conv"]:.0f} % '
                 f'of the conv rate), post-processing {profile.postprocess_ms:.1f} ms '
                 f'({100 * profile.postprocess_share:.1f} %)')
    top = ', '.join(f'{op} {ms:.1f}' for op, ms in profile.by_op[:6])
    lines.append(f'    post-processing by op (ms): {top or "-"}')
    top = ', '.join(f'{op} {ms:.1f}' for op, ms in profile.network_by_op[:6])
    lines.append(f'    network by op (ms): {top or "-"}')
    return '\n'.join(lines)
