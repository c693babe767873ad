#!/usr/bin/env python3
"""GPU checks that no CPU-only machine can do, in one command of a few minutes.

    python3 scripts/gpu_checks.py [ZOO_TRAIN_DIR] [--json FILE] [--frames 20] [--iterations 50]

1. cuda-python helpers for real (``seg_perception.runtime.cuda_memory``): pinned host and
   device buffers of several dtypes and shapes, async copies both ways with a stream sync,
   the synchronous copy, 8 threads x 100 round trips at once (each thread its own device
   current, stream and buffers), CUDA errors (out of memory, bad device, use after close),
   no leak (free memory back after closing 1 GiB), copy bandwidth.
2. The torch CUDA backend on both zoo models (or ZOO_TRAIN_DIR/enet/model and
   ZOO_TRAIN_DIR/deeplab/model, as scripts/train_zoo.sh writes them) at 1024x512 and
   2048x1024 with their current heads and trained weights: Segmenter latency p50 (total and
   inference) in FP32 and FP16, and FP16-vs-FP32 agreement on held-out synthetic frames
   (semantic class, panoptic class; the check needs >= 99.5 % of pixels). Prints Markdown
   rows for docs/jetson.md.
3. Where TensorRT is installed too: the ``gpu`` / ``tensorrt`` marked tests of
   test/runtime (real builds and runs).

Exit status 0: every check that could run passed and the cuda-python and torch parts ran;
1: a check failed; 2: no CUDA GPU, or cuda-python or CUDA torch missing (the message says
which and how to get it). Needs numpy, OpenCV, PyYAML, onnx, torch with CUDA and
cuda-python for the driver's CUDA (``pip install "cuda-python==12.6.*"`` for a CUDA 12.6
driver; ``seg-perception doctor`` shows both versions).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'test'))

ZOO_MODELS = ('enet_panoptic', 'deeplabv3plus_mobilenetv3_panoptic')
TRAINED_MODELS = ('enet', 'deeplab')          # scripts/train_zoo.sh: OUT/<name>/model
SIZES = ((512, 1024), (1024, 2048))
MIN_AGREEMENT = 0.995
THREADS, ROUND_TRIPS = 8, 100
BANDWIDTH_BYTES, LEAK_BLOCKS, LEAK_BLOCK_BYTES = 256 << 20, 4, 256 << 20


class CheckFailed(AssertionError):
    """A GPU check gave a wrong answer."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# ------------------------------------------------------------------------ what is here

def cuda_python_problem() -> Optional[str]:
    """None when cuda-python reaches a GPU, else why not."""
    from seg_perception.runtime import cuda_memory
    try:
        cuda_memory.load_cudart()
        if cuda_memory.device_count() == 0:
            return 'cuda-python sees no CUDA GPU'
    except RuntimeError as error:  # BackendUnavailable / CudaDriverUnavailable / BackendError
        return str(error)
    return None


def torch_problem() -> Optional[str]:
    """None when torch runs on a CUDA GPU, else why not."""
    try:
        import torch
    except ImportError as error:
        return f'torch is not installed ({error})'
    if not torch.cuda.is_available():
        build = 'a CPU-only build' if torch.version.cuda is None else f'CUDA {torch.version.cuda}'
        return f'torch {torch.__version__} ({build}) sees no CUDA GPU'
    return None


# ------------------------------------------------------------------------- cuda-python

def _round_trip(cuda_memory: Any, shape: Tuple[int, ...], dtype: Any, seed: int,
                stream: Any) -> None:
    rng = np.random.default_rng(seed)
    source = cuda_memory.PinnedArray(shape, dtype)
    target = cuda_memory.PinnedArray(shape, dtype)
    device = cuda_memory.DeviceBuffer(source.nbytes)
    try:
        source.array[...] = rng.integers(0, 120, shape).astype(dtype)
        target.array[...] = 0
        cuda_memory.copy_to_device_async(device, source, stream)
        cuda_memory.copy_to_host_async(target, device, stream)
        stream.synchronize()
        check(np.array_equal(source.array, target.array),
              f'round trip of {np.dtype(dtype).name} {shape} changed the data')
        cuda_memory.copy_array_to_device(device, source.array[::-1].copy())
        cuda_memory.copy_to_host_async(target, device, stream)
        stream.synchronize()
        check(np.array_equal(source.array[::-1], target.array),
              f'synchronous copy of {np.dtype(dtype).name} {shape} changed the data')
    finally:
        for item in (device, source, target):
            item.close()


def _bandwidth(cuda_memory: Any, stream: Any, repeats: int = 10) -> Dict[str, float]:
    nbytes = BANDWIDTH_BYTES
    host = cuda_memory.PinnedArray((nbytes,), np.uint8)
    device = cuda_memory.DeviceBuffer(nbytes)
    try:
        figures = {}
        for label, copy in (('host_to_device_gb_s', cuda_memory.copy_to_device_async),
                            ('device_to_host_gb_s', cuda_memory.copy_to_host_async)):
            pair = (device, host) if label.startswith('host') else (host, device)
            copy(*pair, stream)
            stream.synchronize()
            start = time.perf_counter()
            for _ in range(repeats):
                copy(*pair, stream)
            stream.synchronize()
            figures[label] = round(repeats * nbytes / (time.perf_counter() - start) / 1e9, 1)
        return figures
    finally:
        device.close()
        host.close()


def cuda_python_checks() -> Dict[str, Any]:
    from concurrency import run_concurrently

    from seg_perception.runtime import cuda_memory
    from seg_perception.runtime.base import BackendError
    cuda_memory.set_device(0)
    gpu = cuda_memory.gpu_properties(0)
    driver, runtime = cuda_memory.cuda_versions()
    stream = cuda_memory.CudaStream()
    try:
        for index, (shape, dtype) in enumerate([((1,), np.float32), ((3, 5, 7), np.int32),
                                                ((1, 3, 512, 1024), np.float32),
                                                ((2, 1024, 2048), np.uint8),
                                                ((17, 31), np.float16)]):
            _round_trip(cuda_memory, shape, dtype, index, stream)
        bandwidth = _bandwidth(cuda_memory, stream)
    finally:
        stream.close()

    def worker(index: int) -> int:
        cuda_memory.set_device(0)
        own = cuda_memory.CudaStream()
        try:
            for step in range(ROUND_TRIPS):
                shape = (1 + (index * 7 + step) % 13, 64 + step % 5, 3)
                _round_trip(cuda_memory, shape, np.float32, index * 1000 + step, own)
        finally:
            own.close()
        return ROUND_TRIPS

    start = time.perf_counter()
    results, errors = run_concurrently(worker, THREADS, timeout=300)
    check(not errors, f'threads failed: {errors[:3]}')
    check(sum(results.values()) == THREADS * ROUND_TRIPS, f'threads returned {results}')
    thread_seconds = time.perf_counter() - start
    _expect_error(lambda: cuda_memory.DeviceBuffer(1 << 50), BackendError,
                  'cudaErrorMemoryAllocation')
    _expect_error(lambda: cuda_memory.set_device(cuda_memory.device_count() + 3),
                  BackendError, 'cudaErrorInvalidDevice')
    free_before, _ = cuda_memory.cuda_call('cudaMemGetInfo', 'cudaMemGetInfo')
    blocks = [cuda_memory.DeviceBuffer(LEAK_BLOCK_BYTES) for _ in range(LEAK_BLOCKS)]
    for block in blocks:
        block.close()
    _expect_error(lambda: blocks[0].pointer, BackendError, 'after close')
    free_after, total = cuda_memory.cuda_call('cudaMemGetInfo', 'cudaMemGetInfo')
    check(free_after >= free_before - (64 << 20),
          f'free memory {free_before >> 20} -> {free_after >> 20} MiB after freeing '
          f'{LEAK_BLOCKS * LEAK_BLOCK_BYTES >> 20} MiB')
    return {'gpu': gpu.name, 'compute_capability': gpu.compute_capability_text,
            'multiprocessors': gpu.multiprocessors, 'memory_gib': gpu.memory_gib,
            'cuda_python': cuda_memory.cuda_python_version(),
            'driver_cuda': cuda_memory.version_text(driver),
            'runtime_cuda': cuda_memory.version_text(runtime),
            'thread_round_trips': THREADS * ROUND_TRIPS,
            'thread_seconds': round(thread_seconds, 2), **bandwidth}


def _expect_error(action: Callable[[], Any], kind: type, text: str) -> None:
    try:
        action()
    except kind as error:
        check(text in str(error), f'expected {text!r} in {error}')
        return
    raise CheckFailed(f'expected {kind.__name__} ({text}), nothing was raised')


# ---------------------------------------------------------------------------- torch CUDA

def zoo_package(model: str) -> str:
    return os.path.join(ROOT, 'seg_perception', 'zoo', model)


def sized_backend(package: str, height: int, width: int, precision: str, device: str) -> Any:
    """The torch backend of a package (its weights and heads) at another input size."""
    from seg_perception.manifest import ModelManifest
    from seg_perception.runtime.torch_backend import TorchBackend
    manifest = dataclasses.replace(ModelManifest.load(package), input_height=height,
                                   input_width=width)
    return TorchBackend(manifest, package, device=device, precision=precision)


def agreement(reference: Any, other: Any, frames: int) -> Tuple[float, float]:
    """Share of pixels with the same semantic class and panoptic class on held-out frames."""
    from seg_perception.data.synthetic import SYNTHETIC_TEST_SEED
    from seg_perception.data.synthetic.generator import SceneGenerator
    from seg_perception.segmenter import Segmenter
    manifest = reference.manifest
    first, second = Segmenter(reference, manifest), Segmenter(other, other.manifest)
    generator = SceneGenerator(manifest.input_width, manifest.input_height,
                               SYNTHETIC_TEST_SEED)
    semantic = panoptic = total = 0
    for index in range(frames):
        image = generator.generate(index).image
        a, b = first.segment(image), second.segment(image)
        semantic += int((a.semantic == b.semantic).sum())
        divisor = manifest.label_divisor
        panoptic += int((a.panoptic // divisor == b.panoptic // divisor).sum())
        total += a.semantic.size
    return semantic / total, panoptic / total


def latency(backend: Any, iterations: int, warmup: int) -> Dict[str, float]:
    from seg_perception.segmenter import Segmenter
    from seg_perception.tools.benchmark import run_benchmark
    report = run_benchmark(Segmenter(backend, backend.manifest), iterations=iterations,
                           warmup=warmup)
    return {'total_p50_ms': round(report.total.median_ms, 2),
            'inference_p50_ms': round(report.inference.median_ms, 2)}


def torch_figures(package: str, height: int, width: int, frames: int, iterations: int,
                  device: str = 'cuda', low: str = 'fp16') -> Dict[str, Any]:
    """FP32 and ``low`` backends of one package at one size: latencies and agreement."""
    full = sized_backend(package, height, width, 'fp32', device)
    reduced = sized_backend(package, height, width, low, device)
    try:
        semantic, panoptic = agreement(full, reduced, frames)
        return {'model': full.manifest.architecture, 'package': package,
                'size': f'{width}x{height}', 'frames': frames,
                'semantic_agreement': semantic, 'panoptic_agreement': panoptic,
                'fp32': latency(full, iterations, max(2, iterations // 5)),
                low: latency(reduced, iterations, max(2, iterations // 5))}
    finally:
        full.close()
        reduced.close()


def markdown_row(figures: Dict[str, Any], gpu: str) -> str:
    name = 'ENet' if figures['model'].startswith('enet') else 'DeepLabv3+ MobileNetV3'
    fp32, fp16 = figures['fp32'], figures['fp16']
    return (f"| {name} | {gpu} | FP32 / FP16 | {figures['size']} | "
            f"{fp32['total_p50_ms']} / {fp16['total_p50_ms']} | "
            f"inference {fp32['inference_p50_ms']} / {fp16['inference_p50_ms']} ms; FP16 vs "
            f"FP32 {100 * figures['semantic_agreement']:.3f} % of pixels |")


def torch_checks(packages: List[str], frames: int, iterations: int) -> Dict[str, Any]:
    import torch
    gpu = torch.cuda.get_device_name(0)
    rows, results = [], []
    for package in packages:
        for height, width in SIZES:
            count = frames if width <= 1024 else max(1, frames // 2)
            figures = torch_figures(package, height, width, count, iterations)
            results.append(figures)
            rows.append(markdown_row(figures, gpu))
            print(f'  {rows[-1]}', flush=True)
    low = [f for f in results if f['semantic_agreement'] < MIN_AGREEMENT]
    check(not low, 'FP16 vs FP32 below 99.5 %: ' + ', '.join(
        f"{f['model']} {f['size']} {100 * f['semantic_agreement']:.3f} %" for f in low))
    return {'gpu': gpu, 'torch': torch.__version__, 'cuda': torch.version.cuda,
            'results': results, 'markdown': rows}


# ------------------------------------------------------------------------------ TensorRT

def tensorrt_tests() -> Dict[str, Any]:
    import subprocess
    command = [sys.executable, '-m', 'pytest', '-q', '-m', 'gpu or tensorrt', '-p',
               'no:cacheprovider', 'test/runtime/test_tensorrt.py']
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    tail = result.stdout.strip().splitlines()[-1:] or ['']
    check(result.returncode == 0, f'pytest -m "gpu or tensorrt": {result.stdout[-3000:]}')
    return {'pytest': tail[0]}


# ------------------------------------------------------------------ torchrun + NCCL (DDP)

def nccl_torchrun_check(timeout_s: int = 300) -> Dict[str, Any]:
    """One short ENet run through ``python -m torch.distributed.run --nproc_per_node=1``:
    a process group of one on NCCL, SyncBatchNorm and DistributedDataParallel (issue 28)."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                   '--nproc_per_node=1', '-m', 'seg_perception.cli', 'train', '--model',
                   'enet', '--device', 'cuda', '--height', '128', '--width', '256',
                   '--epochs', '1', '--batch-size', '4', '--train-frames', '16',
                   '--val-frames', '2', '--workers', '0', '--out', out]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                                timeout=timeout_s)
        output = result.stdout + result.stderr
        check(result.returncode == 0, f'torchrun train exited {result.returncode}: '
                                      f'{output[-3000:]}')
        check('1 processes (nccl)' in output, f'no NCCL process group: {output[-2000:]}')
        check(os.path.isfile(os.path.join(out, 'model', 'manifest.yaml')),
              'no model package exported')
        return {'seconds': round(time.perf_counter() - started, 1), 'backend': 'nccl'}


# ---------------------------------------------------------------------------------- main

def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('train_dir', nargs='?', metavar='ZOO_TRAIN_DIR',
                        help='check OUT/enet/model and OUT/deeplab/model of '
                             'scripts/train_zoo.sh instead of the shipped zoo')
    parser.add_argument('--frames', type=int, default=20,
                        help='held-out frames for agreement (half at 2048x1024)')
    parser.add_argument('--iterations', type=int, default=50, help='timed frames per run')
    parser.add_argument('--json', metavar='PATH', help='write every figure here')
    args = parser.parse_args(argv)
    packages = [os.path.join(args.train_dir, name, 'model') for name in TRAINED_MODELS] \
        if args.train_dir else [zoo_package(model) for model in ZOO_MODELS]
    missing = [p for p in packages if not os.path.isfile(os.path.join(p, 'manifest.yaml'))]
    if missing:
        print(f'gpu_checks: no model package at {", ".join(missing)}', file=sys.stderr)
        return 2
    problems = {'cuda-python': cuda_python_problem(), 'torch CUDA': torch_problem()}
    if all(problems.values()):
        print('gpu_checks: no CUDA GPU usable here: ' + '; '.join(
            f'{name}: {reason}' for name, reason in problems.items()) + '. Run it on a '
            'machine with an NVIDIA GPU, CUDA PyTorch and cuda-python for its driver.',
            file=sys.stderr)
        return 2
    sections = [('cuda-python', cuda_python_checks, problems['cuda-python']),
                ('torch CUDA', lambda: torch_checks(packages, args.frames, args.iterations),
                 problems['torch CUDA'])]
    sections.append(('torchrun NCCL', nccl_torchrun_check, problems['torch CUDA']))
    from seg_perception.runtime.tensorrt_backend import tensorrt_available
    trt_ok, trt_reason = tensorrt_available()
    sections.append(('TensorRT tests', tensorrt_tests, None if trt_ok else trt_reason))
    report: Dict[str, Any] = {}
    status = 0
    for name, run, problem in sections:
        if problem:
            print(f'SKIP {name}: {problem}', flush=True)
            report[name] = {'skipped': problem}
            if name != 'TensorRT tests':
                status = max(status, 2)
            continue
        print(f'RUN  {name}', flush=True)
        start = time.perf_counter()
        try:
            report[name] = run()
        except Exception as error:  # noqa: BLE001 - a wrong answer or a crash: both fail
            if not isinstance(error, CheckFailed):
                traceback.print_exc()
            print(f'FAIL {name}: {type(error).__name__}: {error}', flush=True)
            report[name] = {'failed': f'{type(error).__name__}: {error}'}
            status = 1
            continue
        print(f'PASS {name} ({time.perf_counter() - start:.0f} s): '
              f'{json.dumps({k: v for k, v in report[name].items() if k != "results"})}',
              flush=True)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(report, stream, indent=2)
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
