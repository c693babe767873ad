"""TensorRT backend: loads (or builds, then caches) a package's engine and runs it.

Name-based I/O (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``; TensorRT
8.5 has these too, the ``execute_async_v2`` bindings path remains for 8.4 / JetPack 5.0).
Device buffers, pinned host buffers and a stream per thread come from cuda-python
(``cuda_memory``), every return value is checked, and only the manifest's compact outputs
(int32 maps, float32 confidence) are copied back to the host.

An engine is deserialized only after its sidecar key equals the key wanted now and the
bytes read have the recorded checksum (see ``engine_cache``).

Asked for fewer outputs (``outputs=``), it builds its engine from the ONNX pruned to them
(``packages.output_pruning``; written to a temporary file for the parser) under a key that
names them. Until such an engine exists, a cached engine with every output is used instead
of waiting for a build (``force_rebuild`` builds the pruned one); without the ``onnx``
package, which prunes, the engine has every output. Either way ``run`` returns only those.
"""

from __future__ import annotations

from dataclasses import replace
import hashlib
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..manifest import ModelManifest
from ..packages.output_pruning import onnx_available, pruned_onnx_file, PruningError
from . import cuda_memory
from .base import (
    Backend,
    BackendError,
    BackendInfo,
    BackendUnavailable,
    graph_manifest,
    graph_outputs_for,
)
from .engine_builder import build_engine
from .engine_cache import (
    decide,
    default_engine_path,
    file_sha256,
    read_sidecar,
    SidecarError,
    timing_cache_path,
)
from .engine_options import (
    BUILD_PRECISIONS,
    BuildOptions,
    DEFAULT_WORKSPACE_MB,
    import_tensorrt,
    make_engine_key,
    probe_platform,
)
from .engine_tensors import (  # noqa: F401 - GRAPH_DTYPES, TensorSpec: re-exported
    check_tensors,
    describe_tensors,
    GRAPH_DTYPES,
    TensorSpec,
)


def tensorrt_available() -> Tuple[bool, str]:
    """Whether this machine can run the TensorRT backend, and why not (or what it has).

    Cheap: imports tensorrt and cuda-python and asks the driver for device 0, nothing more.
    Never raises for a missing or broken driver (a Jetson container started without the
    NVIDIA runtime): that is a reason, like a missing module.
    """
    try:
        trt = import_tensorrt()
        cuda_memory.load_cudart()
    except BackendUnavailable as error:
        return False, str(error)
    try:
        count = cuda_memory.device_count()
        gpu = cuda_memory.gpu_properties(0) if count > 0 else None
    except RuntimeError as error:  # BackendError, or whatever cuda-python raises itself
        return False, f'CUDA driver not usable: {error}'
    if gpu is None:
        return False, 'no CUDA GPU found'
    return True, f'TensorRT {trt.__version__} on {gpu.name} (sm {gpu.compute_capability_text})'


class TensorRTBackend(Backend):
    """Runs the fused graph with TensorRT on a CUDA GPU.

    Args:
        manifest: The package's manifest.
        package_dir: The model package directory (its ONNX is built from).
        precision: ``fp16`` (default; ``auto`` means the same), ``fp32`` or ``int8``.
        engine_path: Engine file; default next to the package (or the user cache when the
            package is read-only), named after precision, batch and the key's digest.
        force_rebuild: Rebuild even when the cached engine matches (``force_engine_update``).
        build_only: Make sure a matching engine exists (building it if needed), then stop:
            no execution context, ``run`` raises.
        workspace_mb: Builder memory-pool limit.
        fp32_layers: Layer-name patterns kept in FP32 (FP16 accuracy problems).
        calib_images_dir: INT8 calibration images (required for ``int8``).
        allow_build: False = never build; fail with the reason when the cached engine is
            missing or does not match.
        device_index: CUDA device.
        onnx_path: Build from this ONNX instead of the package's (e.g. an FP16-converted
            graph for TensorRT 11).
        progress: Receives build progress lines (default ``print``).
        outputs: Graph outputs to compute (``semantic`` among them; see
            ``base.graph_outputs_for``); None = all. Fewer: a pruned engine (see the module
            docstring), and ``manifest`` is a ``GraphManifest`` of its graph.

    Raises:
        BackendUnavailable: TensorRT, cuda-python or a GPU is missing.
        BackendError: Unusable engine in no-build mode, build failure, engine that does not
            match the graph contract, CUDA errors.
        ValueError: Bad precision / options (the message lists valid choices).
    """

    def __init__(self, manifest: ModelManifest, package_dir: str, precision: str = 'fp16',
                 engine_path: Optional[str] = None, force_rebuild: bool = False,
                 build_only: bool = False, workspace_mb: int = DEFAULT_WORKSPACE_MB,
                 fp32_layers: Sequence[str] = (), calib_images_dir: Optional[str] = None,
                 allow_build: bool = True, device_index: int = 0,
                 onnx_path: Optional[str] = None,
                 progress: Optional[Callable[[str], None]] = None,
                 outputs: Optional[Sequence[str]] = None) -> None:
        precision = 'fp16' if precision == 'auto' else precision
        wanted = graph_outputs_for(manifest, outputs)
        if precision not in BUILD_PRECISIONS:
            raise ValueError(f'TensorRT precision {precision!r} is not one of '
                             f'{", ".join(BUILD_PRECISIONS)}')
        self.manifest = manifest
        self._progress = progress or print
        self._engine = None
        self._states: List['_ThreadState'] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._device_index = int(device_index)
        platform = probe_platform(self._device_index)
        onnx_path = onnx_path or manifest.onnx_path(package_dir)
        onnx_sha256 = _checked_onnx_sha256(onnx_path, manifest, package_dir)
        options = BuildOptions(precision=precision, workspace_mb=int(workspace_mb),
                               fp32_layers=tuple(fp32_layers), calib_images_dir=calib_images_dir)
        calibration_sha256 = ''
        if precision == 'int8':
            from .calibration import calibration_set_sha256
            calibration_sha256 = calibration_set_sha256(calib_images_dir,
                                                        options.calib_max_images)
        full_key = make_engine_key(manifest, onnx_sha256, platform, options, calibration_sha256)
        self.key = full_key
        if wanted != manifest.output_names and onnx_available():
            self.key = replace(full_key, outputs=wanted)

        def path_for(key):
            return engine_path or default_engine_path(
                package_dir, manifest.onnx_file, precision, manifest.batch, manifest.name,
                onnx_sha256, key.digest())
        self.engine_path = path_for(self.key)
        options = replace(options, timing_cache_path=timing_cache_path(
            self.engine_path, platform.tensorrt_version, platform.gpu_name))
        self.decision = decide(self.engine_path, self.key, force_rebuild, allow_build)
        full = decide(path_for(full_key), full_key) \
            if self.key.outputs and not self.decision.use and not force_rebuild else None
        if full is not None and full.use:  # a usable engine beats minutes of building
            self._progress(f'TensorRT engine: none pruned to {", ".join(wanted)} yet '
                           f'({self.decision.reason}); using the cached one with every output, '
                           f'{path_for(full_key)} (force_rebuild / force_engine_update builds '
                           'the pruned one)')
            self.key, self.engine_path, self.decision = full_key, path_for(full_key), full
        if self.decision.action == 'fail':
            raise BackendError(f'TensorRT engine not usable: {self.decision.reason}')
        if self.decision.action == 'build':
            self._progress(f'TensorRT engine: {self.decision.reason}; building it now')
            self._build(onnx_path, manifest, options)
        subset = '' if wanted == manifest.output_names else \
            f', pruned to {", ".join(wanted)}' if self.key.outputs else \
            f' with every output (returns {", ".join(wanted)}; pruning needs onnx and a build)'
        self.info = BackendInfo(
            'tensorrt', f'cuda:{self._device_index}', precision,
            f'TensorRT {platform.tensorrt_version}, {platform.gpu_name}, engine '
            f'{self.engine_path}{subset}')
        self.manifest = graph_manifest(manifest, manifest.input_names, wanted)
        if build_only:
            return
        self._trt = import_tensorrt()
        self._logger = self._trt.Logger(self._trt.Logger.WARNING)
        self._runtime = self._trt.Runtime(self._logger)
        self._engine = self._deserialize()
        self._specs = describe_tensors(self._trt, self._engine)
        if self.key.outputs:  # a pruned graph may have lost center_threshold
            kept = {spec.name for spec in self._specs if spec.is_input} | {'image'}
            self.manifest = graph_manifest(
                manifest, [name for name in manifest.input_names if name in kept], wanted)
        check_tensors(self._specs, self.manifest, self.engine_path)

    def _build(self, onnx_path: str, manifest: ModelManifest, options: BuildOptions) -> None:
        """Build the engine of ``self.key``: from ``onnx_path``, or from that graph pruned to
        ``self.key.outputs`` (in a temporary file, removed after the build)."""
        if not self.key.outputs:
            build_engine(onnx_path, self.engine_path, self.key, manifest, options,
                         self._progress, device_index=self._device_index)
            return
        try:
            with pruned_onnx_file(onnx_path, self.key.outputs,
                                  self.key.onnx_sha256) as (path, pruned):
                self._progress(f'TensorRT engine: building from {onnx_path} {pruned.summary}')
                build_engine(path, self.engine_path, self.key,
                             graph_manifest(manifest, pruned.inputs, pruned.outputs), options,
                             self._progress, device_index=self._device_index)
        except PruningError as error:
            raise BackendError(f'TensorRT engine: {error}') from None

    def _deserialize(self) -> Any:
        """Read the engine once, check those exact bytes against the sidecar, deserialize."""
        try:
            sidecar = read_sidecar(self.engine_path)
        except SidecarError as error:
            raise BackendError(f'engine sidecar changed while loading: {error}') from None
        with open(self.engine_path, 'rb') as stream:
            data = stream.read()
        if sidecar.key != self.key or hashlib.sha256(data).hexdigest() != sidecar.engine_sha256:
            raise BackendError(f'{self.engine_path} changed while loading (another build?); '
                               'not deserializing it, try again')
        cuda_memory.set_device(self._device_index)
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise BackendError(
                f'TensorRT could not deserialize {self.engine_path} although its sidecar '
                'matches this machine (see TensorRT messages above); rebuild it with '
                '`seg-perception build-engine --force` or force_engine_update')
        return engine

    def run(self, images: np.ndarray, center_threshold: float) -> Dict[str, np.ndarray]:
        if self._engine is None:
            raise BackendError('TensorRT backend was created with build_only=True (or is '
                               'closed): it cannot run inference')
        expected = (self.manifest.batch, 3, self.manifest.input_height,
                    self.manifest.input_width)
        if not isinstance(images, np.ndarray) or images.shape != expected \
                or images.dtype != np.float32:
            raise ValueError(f'images must be float32 {expected}, got '
                             f'{getattr(images, "dtype", type(images).__name__)} '
                             f'{getattr(images, "shape", "")}')
        state = self._thread_state()
        np.copyto(state.host['image'].array, images)
        if 'center_threshold' in self.manifest.input_names:
            state.host['center_threshold'].array[0] = center_threshold
        return state.run(self.manifest.input_names, self.manifest.output_names)

    def _thread_state(self) -> '_ThreadState':
        state = getattr(self._local, 'state', None)
        if state is None:
            with self._lock:
                state = _ThreadState(self._trt, self._engine, self._specs, self.manifest,
                                     self._device_index)
                self._states.append(state)
            self._local.state = state
        return state

    def close(self) -> None:
        with self._lock:
            states, self._states = self._states, []
            if states or self._engine is not None:
                cuda_memory.set_device(self._device_index)
            for state in states:
                state.close()
            self._local = threading.local()
            self._engine = None
            self._runtime = None


class _ThreadState:
    """One thread's execution context, stream and buffers (contexts are not thread-safe)."""

    def __init__(self, trt: Any, engine: Any, specs: Sequence[TensorSpec],
                 manifest: ModelManifest, device_index: int) -> None:
        cuda_memory.set_device(device_index)
        self.device: Dict[str, cuda_memory.DeviceBuffer] = {}
        self.host: Dict[str, cuda_memory.PinnedArray] = {}
        self.stream = cuda_memory.CudaStream()
        self.context = engine.create_execution_context()
        try:
            if self.context is None:
                raise BackendError('TensorRT could not create an execution context (GPU out '
                                   'of memory?)')
            self._v3 = hasattr(self.context, 'execute_async_v3')
            self._setup(specs, manifest)
        except BaseException:
            self.close()
            raise

    def _setup(self, specs: Sequence[TensorSpec], manifest: ModelManifest) -> None:
        for spec in specs:
            if spec.is_input and any(d < 0 for d in spec.shape):
                shape = (manifest.batch,) + tuple(spec.shape[1:])
                ok = self.context.set_input_shape(spec.name, shape) if self._v3 \
                    else self.context.set_binding_shape(spec.binding, shape)
                if not ok:
                    raise BackendError(f'TensorRT rejected input shape {shape} for {spec.name!r} '
                                       "(outside the engine's optimisation profile)")
        self._bindings = [0] * len(specs)
        copied = set(manifest.input_names) | set(manifest.output_names)
        for spec in specs:
            shape = tuple(self.context.get_tensor_shape(spec.name) if self._v3
                          else self.context.get_binding_shape(spec.binding))
            if any(d < 0 for d in shape):
                raise BackendError(f'TensorRT could not infer the shape of {spec.name!r} '
                                   f'({shape})')
            nbytes = max(1, int(np.prod(shape))) * np.dtype(spec.dtype).itemsize
            self.device[spec.name] = cuda_memory.DeviceBuffer(nbytes)
            if spec.name in copied:
                self.host[spec.name] = cuda_memory.PinnedArray(shape, spec.dtype)
            pointer = self.device[spec.name].pointer
            self._bindings[spec.binding] = pointer
            if self._v3 and not self.context.set_tensor_address(spec.name, pointer):
                raise BackendError(f'TensorRT rejected the device address of {spec.name!r}')

    def run(self, inputs: Sequence[str], outputs: Sequence[str]) -> Dict[str, np.ndarray]:
        for name in inputs:
            cuda_memory.copy_to_device_async(self.device[name], self.host[name], self.stream)
        if self._v3:
            ok = self.context.execute_async_v3(self.stream.handle)
        else:
            ok = self.context.execute_async_v2(self._bindings, self.stream.handle)
        if not ok:
            raise BackendError('TensorRT inference failed to enqueue (see TensorRT messages)')
        for name in outputs:
            cuda_memory.copy_to_host_async(self.host[name], self.device[name], self.stream)
        self.stream.synchronize()
        return {name: self.host[name].array.copy() for name in outputs}

    def close(self) -> None:
        try:
            self.stream.synchronize()
        except BackendError:
            pass  # freeing below still has to happen
        self.context = None
        for buffer in list(self.device.values()) + list(self.host.values()):
            buffer.close()
        self.device, self.host = {}, {}
        self.stream.close()


def _checked_onnx_sha256(onnx_path: str, manifest: ModelManifest, package_dir: str) -> str:
    if not os.path.isfile(onnx_path):
        raise BackendError(f'ONNX graph {onnx_path} does not exist; the TensorRT engine is '
                           'built from it')
    digest = file_sha256(onnx_path)
    is_package_onnx = os.path.abspath(onnx_path) == os.path.abspath(
        manifest.onnx_path(package_dir))
    if is_package_onnx and manifest.onnx_sha256 and digest != manifest.onnx_sha256:
        raise BackendError(f'{onnx_path} does not match the checksum in the manifest '
                           '(corrupt or replaced); re-export the package')
    return digest
