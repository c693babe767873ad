"""Latency benchmark of the ``Segmenter`` path (the same path the node uses).

Per frame it records the Segmenter's own stage timings (preprocess / inference /
post-processing) and the wall time of the whole ``segment`` call, then reports medians,
90th percentiles, FPS and the share of Segmenter time spent outside the backend call.

It also records the process CPU time (all threads) of each call and of its backend call.
On a machine shared with other work the wall times grow with the load while CPU times
barely move, so they tell a slow model from a busy machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import os
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..manifest import ModelManifest, TASK_CHOICES
from ..packages.atomic import atomic_write_text
from ..segmenter import Segmenter


@dataclass
class StageStats:
    """Latency statistics of one stage, in milliseconds."""

    median_ms: float
    p90_ms: float
    mean_ms: float

    @classmethod
    def of(cls, samples_ms: np.ndarray) -> 'StageStats':
        return cls(float(np.median(samples_ms)), float(np.percentile(samples_ms, 90)),
                   float(np.mean(samples_ms)))


@dataclass
class BenchmarkReport:
    """What ``run_benchmark`` measured.

    Attributes:
        model: Package name from the manifest.
        task: ``semantic`` or ``panoptic``.
        backend, device, precision, backend_detail: From the backend's ``BackendInfo``.
        backend_reason: Why that backend was chosen.
        network_size: (height, width) of the graph input.
        image_size: (height, width) of the images fed to the Segmenter.
        iterations, warmup: Timed and untimed frames.
        preprocess, inference, postprocess: Segmenter stage timings.
        total: Wall time of each ``Segmenter.segment`` call.
        fps: 1000 / median total.
        outside_backend_share: Fraction of the summed total time not spent in the backend.
        cpu_total, cpu_inference: Process CPU milliseconds (all threads) of each
            ``segment`` call and of its backend call.
        outputs: The graph outputs the backend computed (``Segmenter.graph_outputs``).
    """

    model: str
    task: str
    backend: str
    device: str
    precision: str
    backend_detail: str
    backend_reason: str
    network_size: Tuple[int, int]
    image_size: Tuple[int, int]
    iterations: int
    warmup: int
    preprocess: StageStats
    inference: StageStats
    postprocess: StageStats
    total: StageStats
    fps: float
    outside_backend_share: float
    cpu_total: StageStats
    cpu_inference: StageStats
    outputs: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data['network_size'] = list(self.network_size)
        data['image_size'] = list(self.image_size)
        data['outputs'] = list(self.outputs)
        return data


def benchmark_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, camera-like RGB uint8 (height, width, 3) test image (blurred noise)."""
    import cv2
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 32), max(2, width // 32), 3), np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


class _CpuTimedBackend:
    """Stands in for a backend during a benchmark and records the CPU time of ``run``."""

    def __init__(self, backend) -> None:
        self.inner = backend
        self.last_cpu_ms = 0.0

    def run(self, images: np.ndarray, center_threshold: float):
        start = time.process_time()
        outputs = self.inner.run(images, center_threshold)
        self.last_cpu_ms = (time.process_time() - start) * 1e3
        return outputs

    def __getattr__(self, name):
        return getattr(self.inner, name)


def run_benchmark(segmenter: Segmenter, image_size: Optional[Tuple[int, int]] = None,
                  iterations: int = 50, warmup: int = 5) -> BenchmarkReport:
    """Time ``segmenter.segment`` on one image, ``warmup`` untimed then ``iterations`` timed.

    Args:
        segmenter: The Segmenter to measure.
        image_size: (height, width) of the input image; default the network size.
        iterations: Number of timed frames (>= 1).
        warmup: Number of untimed frames first (>= 0).
    """
    if iterations < 1:
        raise ValueError(f'iterations must be at least 1, got {iterations}')
    if warmup < 0:
        raise ValueError(f'warmup must be 0 or more, got {warmup}')
    height, width = image_size or segmenter.network_size
    image = benchmark_image(height, width)
    for _ in range(warmup):
        segmenter.segment(image)
    samples = np.zeros((iterations, 6), dtype=np.float64)
    timed_backend = _CpuTimedBackend(segmenter.backend)
    segmenter.backend = timed_backend
    try:
        for index in range(iterations):
            cpu_start = time.process_time()
            start = time.perf_counter()
            result = segmenter.segment(image)
            total_ms = (time.perf_counter() - start) * 1e3
            cpu_ms = (time.process_time() - cpu_start) * 1e3
            timing = result.timing
            samples[index] = (timing.preprocess_ms, timing.inference_ms, timing.postprocess_ms,
                              total_ms, cpu_ms, timed_backend.last_cpu_ms)
    finally:
        segmenter.backend = timed_backend.inner
    total = StageStats.of(samples[:, 3])
    info = segmenter.backend.info
    manifest = segmenter.manifest
    return BenchmarkReport(
        model=manifest.name, task=manifest.task, backend=info.name, device=info.device,
        precision=info.precision, backend_detail=info.detail,
        backend_reason=segmenter.backend_reason, network_size=segmenter.network_size,
        image_size=(height, width), iterations=iterations, warmup=warmup,
        preprocess=StageStats.of(samples[:, 0]), inference=StageStats.of(samples[:, 1]),
        postprocess=StageStats.of(samples[:, 2]), total=total,
        fps=1000.0 / total.median_ms,
        outside_backend_share=float(1.0 - samples[:, 1].sum() / samples[:, 3].sum()),
        cpu_total=StageStats.of(samples[:, 4]), cpu_inference=StageStats.of(samples[:, 5]),
        outputs=tuple(segmenter.graph_outputs))


def export_random_package(architecture: str, task: str, height: int, width: int,
                          out_dir: str, batch: int = 1) -> str:
    """Export a randomly initialised registered architecture (speed does not depend on
    weights) as a model package in ``out_dir``; returns ``out_dir``.

    Raises:
        ValueError: Unknown task, or a size that is not a multiple of the model's divisor.
        UnknownModelError: ``architecture`` is not registered (the message lists names).
    """
    from ..models.registry import build_model, get_model_spec
    if task not in TASK_CHOICES:
        raise ValueError(f'task {task!r} is not one of {", ".join(TASK_CHOICES)}')
    spec = get_model_spec(architecture)
    if height % spec.size_divisor or width % spec.size_divisor:
        raise ValueError(
            f'{architecture} needs height and width that are multiples of '
            f'{spec.size_divisor}, got {width}x{height}')
    import torch

    from ..export.onnx_export import export_model_package
    manifest = ModelManifest(
        name=f'{architecture}_{task}', architecture=architecture, task=task,
        input_height=height, input_width=width, batch=batch,
        info={'weights': 'random initialisation (benchmark / demo only)'})
    torch.manual_seed(0)
    network = build_model(architecture, num_classes=manifest.label_set.num_classes,
                          panoptic=task == 'panoptic').eval()
    export_model_package(network, manifest, out_dir)
    return out_dir


def format_report(report: BenchmarkReport) -> str:
    """Human-readable multi-line summary of a report."""
    height, width = report.network_size
    lines = [
        f'{report.model} ({report.task}) {width}x{height} on {report.backend} '
        f'{report.device} {report.precision} [{report.backend_detail}]',
        f'  image {report.image_size[1]}x{report.image_size[0]}, {report.iterations} '
        f'iterations after {report.warmup} warm-up',
        f'  graph outputs: {", ".join(report.outputs) or "?"}',
        f'  {"stage":<14}{"median ms":>10}{"p90 ms":>10}',
    ]
    for name in ('preprocess', 'inference', 'postprocess', 'total'):
        stats = getattr(report, name)
        lines.append(f'  {name:<14}{stats.median_ms:>10.2f}{stats.p90_ms:>10.2f}')
    lines.append(f'  FPS {report.fps:.1f}; outside the backend call: '
                 f'{100 * report.outside_backend_share:.1f} % of Segmenter time')
    lines.append(f'  process CPU per frame (all threads, median): '
                 f'{report.cpu_total.median_ms:.1f} ms, of which backend '
                 f'{report.cpu_inference.median_ms:.1f} ms')
    if report.backend_reason:
        lines.append(f'  backend choice: {report.backend_reason}')
    return '\n'.join(lines)


def write_report_json(report: BenchmarkReport, path: str) -> None:
    """Write the report as JSON, atomically."""
    atomic_write_text(os.path.abspath(path), json.dumps(report.to_dict(), indent=2) + '\n')
