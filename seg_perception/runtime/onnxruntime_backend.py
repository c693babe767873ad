"""ONNX Runtime backend: runs a package's ``model.onnx`` on CPU, CUDA or TensorRT providers.

CPU is the default. GPU execution providers are used only when asked for, and the backend
checks with ``session.get_providers()`` that every requested provider is really active:
ONNX Runtime itself silently drops a provider it cannot load, which would turn a "GPU"
deployment into a slow CPU one without anybody noticing.

Asked for fewer outputs (``outputs=``), it runs the graph pruned to them, made in memory
from the package file's checked bytes (``packages.output_pruning``; nothing is written).
Without the ``onnx`` package it runs the whole graph and returns only those outputs.
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..manifest import ModelManifest
from ..packages.loading import file_sha256
from .base import (
    Backend,
    BackendError,
    BackendInfo,
    BackendUnavailable,
    graph_manifest,
    graph_outputs_for,
)

CPU_PROVIDER = 'CPUExecutionProvider'
CUDA_PROVIDER = 'CUDAExecutionProvider'
TENSORRT_PROVIDER = 'TensorrtExecutionProvider'

ORT_DEVICE_CHOICES = ('cpu', 'cuda')

_GRAPH_DTYPES = {
    'semantic': np.int32, 'confidence': np.float32, 'instance': np.int32,
    'panoptic': np.int32, 'instance_score': np.float32,
}
_ORT_TYPE_NAMES = {np.int32: 'tensor(int32)', np.float32: 'tensor(float)'}


def import_onnxruntime():
    """Import onnxruntime or raise ``BackendUnavailable`` saying how to get it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise BackendUnavailable(
            f'onnxruntime is not installed ({error}); pip install onnxruntime '
            '(or onnxruntime-gpu for CUDA)') from None
    return onnxruntime


def available_providers() -> List[str]:
    """Execution providers this onnxruntime build offers (empty when not installed)."""
    try:
        return list(import_onnxruntime().get_available_providers())
    except BackendUnavailable:
        return []


def default_providers(device: str) -> List[str]:
    """Provider list for ``device`` (``cpu`` or ``cuda``), best first."""
    if device == 'cpu':
        return [CPU_PROVIDER]
    if device == 'cuda':
        return [CUDA_PROVIDER, CPU_PROVIDER]
    raise ValueError(f'device {device!r} is not one of {", ".join(ORT_DEVICE_CHOICES)}')


def default_thread_count() -> int:
    """Cores this process may run on (respects taskset / cgroup affinity where visible)."""
    if hasattr(os, 'sched_getaffinity'):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class OnnxRuntimeBackend(Backend):
    """Runs the fused graph with ONNX Runtime.

    Args:
        manifest: The package's manifest.
        package_dir: Directory holding ``manifest.onnx_file``.
        device: ``cpu`` (default) or ``cuda``; ignored when ``providers`` is given.
        providers: Explicit execution provider names, best first (for example
            ``['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']``).
            Every one must be available and active, else ``BackendUnavailable``.
        threads: Intra-op threads; ``None`` uses the cores this process may run on.
        precision: ``fp32`` (the graph's own precision) or ``fp16``, which needs the
            TensorRT execution provider (it builds an FP16 engine from the FP32 graph).
        outputs: Graph outputs to compute (``semantic`` among them; see
            ``base.graph_outputs_for``); None = all. Fewer: the session runs the graph
            pruned to them, and ``manifest`` is a ``GraphManifest`` of that graph.

    Raises:
        BackendUnavailable: onnxruntime or a requested provider is missing / inactive.
        BackendError: The ONNX file is missing, corrupt or does not match the manifest.
        ValueError: Bad device, threads or output names.
    """

    def __init__(self, manifest: ModelManifest, package_dir: str, device: str = 'cpu',
                 providers: Optional[Sequence[str]] = None, threads: Optional[int] = None,
                 precision: str = 'fp32', outputs: Optional[Sequence[str]] = None) -> None:
        self.manifest = manifest
        self._session = None
        wanted = graph_outputs_for(manifest, outputs)
        if device not in ORT_DEVICE_CHOICES:
            raise ValueError(
                f'device {device!r} is not one of {", ".join(ORT_DEVICE_CHOICES)}')
        if threads is not None and (not isinstance(threads, int) or threads <= 0):
            raise ValueError(f'threads must be a positive integer or None, got {threads!r}')
        requested = list(providers) if providers else default_providers(device)
        if precision not in ('fp32', 'fp16'):
            raise BackendUnavailable(
                f'onnxruntime runs precision fp32 (or fp16 through the TensorRT provider), '
                f'not {precision!r}')
        if precision == 'fp16' and TENSORRT_PROVIDER not in requested:
            raise BackendUnavailable(
                'onnxruntime runs the fp32 graph; precision fp16 needs the '
                f'{TENSORRT_PROVIDER} (providers=[...]) or the torch / tensorrt backends')
        ort = import_onnxruntime()
        available = list(ort.get_available_providers())
        missing = [p for p in requested if p not in available]
        if missing:
            raise BackendUnavailable(
                f'onnxruntime execution provider {", ".join(missing)} is not available '
                f'(available: {", ".join(available)})')
        path = manifest.onnx_path(package_dir)
        model, graph_inputs, pruning = self._graph(path, wanted)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or default_thread_count()
        # Worker threads spin while a run lasts (a graph of many small ops: sleeping between
        # them cost ENet 512x256 ~10 % of its latency) and stop spinning the moment it
        # returns, so the node's ROS threads and the evaluator's decode / bag-writing threads
        # get the cores between inferences (spinning after runs too: 129 instead of 94 ms of
        # CPU per frame for the same work on 2 cores).
        options.add_session_config_entry('session.intra_op.allow_spinning', '1')
        options.add_session_config_entry('session.force_spinning_stop', '1')
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Memory patterns pre-plan one block for every intermediate tensor of the static
        # shapes; without them ENet panoptic 1024x512 batch 2 peaks at 380 MB instead of
        # 710 MB at the same speed (measured on CPU), which keeps the node under 600 MB.
        options.enable_mem_pattern = False
        provider_args = [self._provider_entry(p, precision) for p in requested]
        try:
            session = ort.InferenceSession(model, sess_options=options,
                                           providers=provider_args)
        except Exception as error:  # onnxruntime raises its own pybind exception types
            raise BackendError(
                f'{path} is corrupt or not a valid ONNX model (onnxruntime: '
                f'{str(error).strip()})') from None
        active = list(session.get_providers())
        inactive = [p for p in requested if p not in active]
        if inactive:
            raise BackendUnavailable(
                f'onnxruntime execution provider {", ".join(inactive)} was requested but '
                f'is not active (active: {", ".join(active)}; check the CUDA / cuDNN / '
                'TensorRT libraries)')
        self._session = session
        self.manifest = graph_manifest(manifest, graph_inputs, wanted)
        self._check_graph_contract(path)
        self._output_names = list(wanted)
        self._threshold = np.zeros((1,), dtype=np.float32)
        on_gpu = active[0] != CPU_PROVIDER
        self.info = BackendInfo(
            name='onnxruntime', device='cuda:0' if on_gpu else 'cpu', precision=precision,
            detail=f'providers: {", ".join(active)}; intra-op threads: '
                   f'{options.intra_op_num_threads}{pruning}')

    def _graph(self, path: str, outputs: Tuple[str, ...]
               ) -> Tuple[Union[str, bytes], Tuple[str, ...], str]:
        """(what the session loads: the path or pruned model bytes, the graph inputs it has,
        a note for ``info.detail``); the file's checksum is checked on the bytes read."""
        manifest = self.manifest
        if not os.path.isfile(path):
            raise BackendError(f'ONNX file {path} does not exist')
        full = outputs == manifest.output_names
        from ..packages.output_pruning import onnx_available, prune_onnx_bytes
        if full or not onnx_available():
            self._check_digest(path, file_sha256(path))
            note = '' if full else f'; returns {", ".join(outputs)} of the whole graph (the ' \
                                   'onnx package, which prunes it, is not installed)'
            return path, manifest.input_names, note
        with open(path, 'rb') as stream:
            data = stream.read()
        self._check_digest(path, hashlib.sha256(data).hexdigest())
        try:
            model, pruned = prune_onnx_bytes(data, outputs, os.path.dirname(path))
        except ValueError as error:
            raise BackendError(f'{path}: cannot prune it to outputs {", ".join(outputs)}: '
                               f'{error}') from None
        return model, pruned.inputs, f'; graph pruned {pruned.summary}'

    def _check_digest(self, path: str, digest: str) -> None:
        expected = self.manifest.onnx_sha256
        if expected and digest != expected:
            raise BackendError(
                f'{path} is corrupt: its sha256 does not match the manifest '
                f'({expected[:12]}...); re-export or re-download the package')

    @staticmethod
    def _provider_entry(provider: str, precision: str):
        if provider == TENSORRT_PROVIDER:
            return (provider, {'trt_fp16_enable': precision == 'fp16'})
        return provider

    def _check_graph_contract(self, path: str) -> None:
        """Fail at load time, not on the first frame, when graph and manifest disagree."""
        manifest = self.manifest
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if set(inputs) != set(manifest.input_names):
            raise BackendError(
                f'{path} has inputs {sorted(inputs)} but its manifest ({manifest.task}) '
                f'expects {list(manifest.input_names)}')
        missing = [n for n in manifest.output_names if n not in outputs]
        if missing:
            raise BackendError(
                f'{path} lacks outputs {missing} that its manifest ({manifest.task}) promises')
        expected_image = [manifest.batch, 3, manifest.input_height, manifest.input_width]
        if list(inputs['image'].shape) != expected_image:
            raise BackendError(
                f'{path} input image has shape {inputs["image"].shape}, manifest says '
                f'{expected_image}')
        for name in manifest.output_names:
            expected_type = _ORT_TYPE_NAMES[_GRAPH_DTYPES[name]]
            if outputs[name].type != expected_type:
                raise BackendError(
                    f'{path} output {name} is {outputs[name].type}, the contract says '
                    f'{expected_type}')

    def run(self, images: np.ndarray, center_threshold: float) -> Dict[str, np.ndarray]:
        self.check_input(images)
        manifest = self.manifest
        if self._session is None:
            raise BackendError('onnxruntime backend is closed')
        feeds = {'image': images}
        if 'center_threshold' in manifest.input_names:
            self._threshold[0] = center_threshold
            feeds['center_threshold'] = self._threshold
        values = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values))

    def close(self) -> None:
        self._session = None
