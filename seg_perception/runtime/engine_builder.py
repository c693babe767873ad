"""Build a TensorRT engine from a model package's ONNX graph, and store it in the cache.

Written against the TensorRT 10 Python API (JetPack 6 ships 10.3), with the differences of
8.5 (JetPack 5: explicit-batch flag) and 11 (strongly typed networks only: no FP16 / INT8
builder flags, precision comes from the ONNX graph) handled here. Nothing is imported from
TensorRT until a build starts. The settings, platform and cache key: :mod:`.engine_options`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..manifest import ModelManifest
from .base import BackendError
from .engine_cache import EngineKey, Sidecar, write_engine
from .engine_options import (
    BuildOptions,
    import_tensorrt,
    needs_strong_typing,
    POSTPROCESS_LAYERS,
    tensorrt_major,
)
from .layer_precision import keep_layers_in_fp32

HEARTBEAT_SECONDS = 30.0
STEP_LOG_SECONDS = 10.0

Progress = Callable[[str], None]


def build_engine(onnx_path: str, engine_path: str, key: EngineKey, manifest: ModelManifest,
                 options: BuildOptions, progress: Progress = print,
                 device_index: int = 0) -> Sidecar:
    """Build the engine for ``key`` from ``onnx_path`` and store it (+ sidecar) atomically.

    Args:
        onnx_path: The package's ONNX graph (its sha256 is ``key.onnx_sha256``).
        engine_path: Destination ``.engine``; its folder must be writable.
        key: From ``make_engine_key``; written to the sidecar.
        manifest: The package's manifest (input size, batch, task).
        options: Builder settings.
        progress: Receives progress lines (phases, elapsed time).
        device_index: CUDA device to build (and calibrate) on: the one ``key`` describes.

    Returns:
        The sidecar written next to the engine.

    Raises:
        BackendUnavailable: TensorRT / cuda-python / GPU missing.
        BackendError: The ONNX does not parse (errors with node names), the build fails or
            the destination is not writable.
    """
    if not os.path.isfile(onnx_path):
        raise BackendError(f'ONNX graph {onnx_path} does not exist')
    directory = os.path.dirname(os.path.abspath(engine_path))
    os.makedirs(directory, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise BackendError(f'cannot write the engine: {directory} is not writable; pass '
                           '--engine PATH / engine_path in a writable folder')
    progress(f'Building a TensorRT {options.precision.upper()} engine from {onnx_path} '
             f'(TensorRT {key.tensorrt_version}, {key.gpu_name}). This takes minutes '
             '(10-60 on a Jetson) and happens once: the engine is cached at '
             f'{engine_path}. Tip: sudo jetson_clocks; add swap on 8 GB modules.')
    start = time.monotonic()
    serialized, matched = build_serialized_network(onnx_path, manifest, options, progress,
                                                   engine_path=engine_path,
                                                   device_index=device_index)
    seconds = time.monotonic() - start
    sidecar = write_engine(engine_path, serialized, key, extra={
        'build_seconds': round(seconds, 1), 'workspace_mb': int(options.workspace_mb),
        'fp32_layers_matched': matched, 'onnx_file': os.path.basename(onnx_path)})
    progress(f'Engine built in {seconds / 60:.1f} min ({sidecar.engine_bytes / 2**20:.1f} MiB): '
             f'{engine_path}')
    return sidecar


def build_serialized_network(onnx_path: str, manifest: ModelManifest, options: BuildOptions,
                             progress: Progress = print, engine_path: Optional[str] = None,
                             device_index: int = 0) -> Tuple[Any, List[str]]:
    """Parse and build; returns (serialized engine buffer, layer names kept in FP32).

    ``engine_path`` places the INT8 calibration cache next to the engine (default: next to
    the ONNX file). TensorRT builds (and calibrates) on the calling thread's current CUDA
    device, so ``device_index`` is made current first.
    """
    from . import cuda_memory
    trt = import_tensorrt()
    strongly_typed = needs_strong_typing(trt)
    cuda_memory.set_device(device_index)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.path.abspath(onnx_path)):
        raise BackendError(format_parser_errors(parser, onnx_path))
    config = builder.create_builder_config()
    _set_workspace(trt, config, options.workspace_mb)
    _set_tf32(trt, config, options.tf32)
    _check_io(network, manifest, onnx_path)
    calibrator = None
    if strongly_typed:
        _check_strongly_typed_request(trt, network, options, onnx_path)
    else:
        if options.precision in ('fp16', 'int8'):
            config.set_flag(trt.BuilderFlag.FP16)
        if options.precision == 'int8':
            config.set_flag(trt.BuilderFlag.INT8)
            calibrator = _make_calibrator(manifest, options, progress,
                                          engine_path or os.path.splitext(onnx_path)[0] +
                                          '.int8.engine')
            config.int8_calibrator = calibrator
    patterns = () if strongly_typed else options.fp32_patterns()
    matched: List[str] = []
    if patterns:
        pinning = keep_layers_in_fp32(trt, network, patterns, optional=(POSTPROCESS_LAYERS,))
        matched = list(pinning.pinned)
        if matched:
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            progress(pinning.summary())
    profile = _optimization_profile(builder, network, options.profile_for(manifest))
    if profile is not None:
        config.add_optimization_profile(profile)
        if calibrator is not None and hasattr(config, 'set_calibration_profile'):
            config.set_calibration_profile(profile)
    timing_cache = _attach_timing_cache(config, options.timing_cache_path, progress)
    monitor = _attach_progress_monitor(trt, config, progress)
    stop = threading.Event()
    heartbeat = threading.Thread(target=_heartbeat, args=(stop, progress), daemon=True)
    heartbeat.start()
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        stop.set()
        heartbeat.join()
        if calibrator is not None:
            calibrator.close()
    del monitor
    if calibrator is not None:
        calibrator.raise_if_failed()   # TensorRT read the error as "no more data"
    if serialized is None:
        raise BackendError(
            f'TensorRT could not build an engine from {onnx_path} (see its messages above). '
            'On a Jetson this is most often memory: add swap, close other programs or lower '
            '--workspace')
    if timing_cache is not None and options.timing_cache_path:
        _save_timing_cache(config, options.timing_cache_path, progress)
    return serialized, matched


def format_parser_errors(parser: Any, onnx_path: str) -> str:
    """One line per OnnxParser error, with the ONNX node name and operator where known."""
    lines = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        where = []
        node_name = _call_or_none(error, 'node_name')
        operator = _call_or_none(error, 'node_operator')
        if node_name:
            where.append(f'node {node_name!r}')
        elif _call_or_none(error, 'node') not in (None, -1):
            where.append(f'node #{error.node()}')
        if operator:
            where.append(f'op {operator}')
        lines.append(f'  {", ".join(where) or "graph"}: {error.desc()} ({error.code()})')
    if not lines:
        lines.append('  (the parser reported no details)')
    return (f'TensorRT cannot parse {onnx_path}:\n' + '\n'.join(lines) +
            '\nCheck the graph with `seg-perception check-onnx` (opset 17, no MaxUnpool, '
            'Resize nearest/linear only, TopK with a constant K).')


def _call_or_none(obj: Any, method: str) -> Any:
    function = getattr(obj, method, None)
    if function is None:
        return None
    try:
        return function()
    except Exception:  # noqa: BLE001 - optional detail from older parsers
        return None


def _network_flags(trt: Any, strongly_typed: bool) -> int:
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    # TensorRT 8.x needs explicit batch for ONNX; in 10.x it is the only mode (deprecated flag).
    if tensorrt_major(trt) < 10 and hasattr(creation, 'EXPLICIT_BATCH'):
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    if strongly_typed and hasattr(creation, 'STRONGLY_TYPED'):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return flags


def _set_workspace(trt: Any, config: Any, workspace_mb: int) -> None:
    nbytes = int(workspace_mb) << 20
    if hasattr(config, 'set_memory_pool_limit'):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, nbytes)
    else:  # TensorRT < 8.4
        config.max_workspace_size = nbytes


def _set_tf32(trt: Any, config: Any, allow: bool) -> None:
    """TF32 is on by default (Ampere and later, Orin included): it rounds FP32 inputs of
    matrix products and convolutions to 10-bit mantissas, the very rounding the FP32 layers
    exist to avoid. Cleared unless asked for; the key records the choice."""
    flag = getattr(trt.BuilderFlag, 'TF32', None)
    if flag is None:
        return
    if allow:
        config.set_flag(flag)
    else:
        config.clear_flag(flag)


def _check_io(network: Any, manifest: ModelManifest, onnx_path: str) -> None:
    """The graph's inputs / outputs must be the manifest's (name-based I/O everywhere)."""
    inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    outputs = {network.get_output(i).name for i in range(network.num_outputs)}
    missing = [n for n in manifest.input_names if n not in inputs] + \
        [n for n in manifest.output_names if n not in outputs]
    if missing:
        raise BackendError(
            f'{onnx_path} lacks tensor(s) {", ".join(missing)} that the manifest promises '
            f'(graph inputs: {", ".join(sorted(inputs))}; outputs: {", ".join(sorted(outputs))})')


def _check_strongly_typed_request(trt: Any, network: Any, options: BuildOptions,
                                  onnx_path: str) -> None:
    if options.precision == 'int8':
        raise BackendError(
            f'TensorRT {trt.__version__} removed implicit INT8 calibration: quantize the ONNX '
            'with Q/DQ nodes (NVIDIA ModelOpt) and build it with --precision fp32')
    if options.fp32_layers:
        raise BackendError(
            f'TensorRT {trt.__version__} builds strongly typed networks: layer precision comes '
            'from the ONNX graph, so --fp32-layers cannot apply; keep those nodes in FP32 when '
            'converting the graph (ModelOpt AutoCast nodes_to_exclude)')
    if options.precision == 'fp16' and not _has_half_tensors(trt, network):
        raise BackendError(
            f'TensorRT {trt.__version__} has no FP16 builder flag (strongly typed networks '
            f'only) and {onnx_path} is all FP32. Convert it first with NVIDIA ModelOpt '
            'AutoCast (modelopt.onnx.autocast.convert_to_mixed_precision, '
            'low_precision_type="fp16", keep_io_types=True, nodes_to_exclude='
            '["/postprocess/.*"]: the grouping needs FP32) and pass it with --onnx, or '
            'build with --precision fp32')


def _has_half_tensors(trt: Any, network: Any) -> bool:
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if any(layer.get_output(i).dtype == trt.float16 for i in range(layer.num_outputs)):
            return True
    return False


def _optimization_profile(builder: Any, network: Any, batch: Tuple[int, int, int]) -> Any:
    """A profile over the batch axis when the graph has dynamic dimensions, else None."""
    dynamic = []
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = tuple(tensor.shape)
        if any(d < 0 for d in shape):
            if any(d < 0 for d in shape[1:]):
                raise BackendError(
                    f'graph input {tensor.name!r} has dynamic dimensions {shape} besides the '
                    'batch axis; export it with a fixed input size')
            dynamic.append((tensor.name, shape))
    if not dynamic:
        return None
    profile = builder.create_optimization_profile()
    for name, shape in dynamic:
        profile.set_shape(name, *[(b,) + shape[1:] for b in batch])
    return profile


def _make_calibrator(manifest: ModelManifest, options: BuildOptions, progress: Progress,
                     engine_path: str) -> Any:
    import numpy as np

    from .calibration import (
        calibration_batches,
        calibration_cache_path,
        calibration_set_sha256,
        check_calibration_images,
        make_entropy_calibrator,
    )
    directory, limit = options.calib_images_dir, options.calib_max_images
    batch = options.profile_for(manifest)[1]
    count = check_calibration_images(directory, limit, progress)
    digest = calibration_set_sha256(directory, limit)
    extra = {}
    if manifest.is_panoptic:
        extra['center_threshold'] = np.array([manifest.postprocess.center_threshold],
                                             dtype=np.float32)
    return make_entropy_calibrator(
        lambda: calibration_batches(directory, batch, manifest.input_height,
                                    manifest.input_width, limit),
        batch, calibration_cache_path(engine_path, digest),
        extra_inputs=extra, log=progress, expected_batches=-(-count // batch))


def _attach_timing_cache(config: Any, path: Optional[str], progress: Progress) -> Any:
    if not path:
        return None
    data = b''
    if os.path.isfile(path):
        with open(path, 'rb') as stream:
            data = stream.read()
    cache = config.create_timing_cache(data)
    if cache is not None and config.set_timing_cache(cache, False):
        if data:
            progress(f'using timing cache {path}')
        return cache
    # The cache only speeds builds up; an unusable one is replaced, and we say so.
    progress(f'timing cache {path} is unusable (other GPU / TensorRT, or corrupt); '
             'starting a new one')
    cache = config.create_timing_cache(b'')
    if cache is None or not config.set_timing_cache(cache, True):
        raise BackendError('TensorRT could not create an empty timing cache')
    return cache


def _save_timing_cache(config: Any, path: str, progress: Progress) -> None:
    from ..packages.atomic import atomic_write_bytes
    serialized = config.get_timing_cache().serialize()
    atomic_write_bytes(path, bytes(memoryview(serialized)))
    progress(f'timing cache saved: {path}')


def _attach_progress_monitor(trt: Any, config: Any, progress: Progress) -> Any:
    """Report builder phases through ``IProgressMonitor`` (TensorRT >= 10); None before."""
    if not hasattr(trt, 'IProgressMonitor') or not hasattr(config, 'progress_monitor'):
        return None

    class PhaseLogger(trt.IProgressMonitor):
        """Logs top-level phases and, at most every few seconds, step counts."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()
            self._start = time.monotonic()
            self._steps: Dict[str, int] = {}
            self._last = 0.0

        def phase_start(self, phase_name: str, parent_phase: Optional[str],
                        num_steps: int) -> None:
            with self._lock:
                self._steps[phase_name] = num_steps
                if parent_phase is None:
                    progress(f'[{_elapsed(self._start)}] {phase_name} ({num_steps} steps)')

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                now = time.monotonic()
                if now - self._last >= STEP_LOG_SECONDS:
                    self._last = now
                    total = self._steps.get(phase_name, 0)
                    progress(f'[{_elapsed(self._start)}] {phase_name}: step {step + 1}/{total}')
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                self._steps.pop(phase_name, None)

    monitor = PhaseLogger()
    config.progress_monitor = monitor
    return monitor


def _heartbeat(stop: threading.Event, progress: Progress) -> None:
    start = time.monotonic()
    while not stop.wait(HEARTBEAT_SECONDS):
        progress(f'[{_elapsed(start)}] still building (TensorRT is timing kernels; this is '
                 'normal)')


def _elapsed(start: float) -> str:
    seconds = int(time.monotonic() - start)
    return f'{seconds // 60:02d}:{seconds % 60:02d}'
