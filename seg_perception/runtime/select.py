"""Choose and create a backend: ``auto`` takes the best one this machine can run.

Preference order (fastest first): TensorRT, ONNX Runtime with CUDA, PyTorch on CUDA,
ONNX Runtime on CPU, PyTorch on CPU. The returned reason says which one was chosen and
why each better one was not, so a user who expected the GPU sees at once what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..manifest import ModelManifest
from .base import (
    Backend,
    BACKEND_CHOICES,
    BackendUnavailable,
    DEVICE_CHOICES,
    graph_outputs_for,
    PRECISION_CHOICES,
)


@dataclass(frozen=True)
class Candidate:
    """One (backend, device) pair that ``create_backend`` may try."""

    backend: str
    device: str

    @property
    def label(self) -> str:
        if self.backend == 'tensorrt':
            return 'tensorrt'
        return f'{self.backend} {self.device.upper()}'


#: Best first.
PREFERENCE: Tuple[Candidate, ...] = (
    Candidate('tensorrt', 'cuda'),
    Candidate('onnxruntime', 'cuda'),
    Candidate('torch', 'cuda'),
    Candidate('onnxruntime', 'cpu'),
    Candidate('torch', 'cpu'),
)


def check_choice(parameter: str, value: str, choices: Tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming ``parameter`` and the valid choices unless ``value`` is one."""
    if value not in choices:
        raise ValueError(f'{parameter} {value!r} is not one of {", ".join(choices)}')


def candidates_for(backend: str, device: str) -> List[Candidate]:
    """The candidates ``create_backend`` tries for a backend / device request, best first."""
    check_choice('backend', backend, BACKEND_CHOICES)
    check_choice('device', device, DEVICE_CHOICES)
    if backend == 'tensorrt' and device == 'cpu':
        raise ValueError('backend tensorrt runs on device cuda only, not cpu')
    return [c for c in PREFERENCE
            if backend in ('auto', c.backend) and device in ('auto', c.device)]


def resolve_precision(precision: str, candidate: Candidate) -> str:
    """``auto`` means fp16 where the candidate builds / runs it natively on a GPU, else fp32."""
    if precision != 'auto':
        return precision
    return 'fp16' if candidate.device == 'cuda' and candidate.backend != 'onnxruntime' \
        else 'fp32'


def _probe(candidate: Candidate) -> Optional[str]:
    """Cheap availability check before loading anything; returns why not, or None."""
    if candidate.backend == 'tensorrt':
        try:
            from .tensorrt_backend import tensorrt_available
        except ImportError as error:
            return f'backend module not present ({error})'
        available, reason = tensorrt_available()
        return None if available else reason
    if candidate.backend == 'onnxruntime':
        try:
            import onnxruntime
        except ImportError:
            return 'module not installed'
        providers = list(onnxruntime.get_available_providers())
        if candidate.device == 'cuda' and 'CUDAExecutionProvider' not in providers:
            return f'not available (providers: {", ".join(providers)})'
        return None
    try:
        import torch
    except ImportError:
        return 'module not installed'
    if candidate.device == 'cuda' and not torch.cuda.is_available():
        return 'no GPU'
    return None


def _backend_class(candidate: Candidate) -> Callable[..., Backend]:
    if candidate.backend == 'tensorrt':
        from .tensorrt_backend import TensorRTBackend
        return TensorRTBackend
    if candidate.backend == 'onnxruntime':
        from .onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend
    from .torch_backend import TorchBackend
    return TorchBackend


def _accepted(cls: Callable[..., Backend], options: Dict[str, Any]) -> Dict[str, Any]:
    parameters = inspect.signature(cls).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in parameters}


def _probe_label(candidate: Candidate) -> str:
    if candidate.backend == 'onnxruntime' and candidate.device == 'cuda':
        return 'onnxruntime CUDA provider'
    return candidate.label


def create_backend(package_dir: str, manifest: ModelManifest, backend: str = 'auto',
                   device: str = 'auto', precision: str = 'auto',
                   **options: Any) -> Tuple[Backend, str]:
    """Create the best backend allowed by the request.

    Args:
        package_dir: Model package directory.
        manifest: Its manifest.
        backend: One of ``base.BACKEND_CHOICES``.
        device: One of ``base.DEVICE_CHOICES``.
        precision: One of ``base.PRECISION_CHOICES``; ``auto`` = fp16 on TensorRT / torch
            CUDA, fp32 otherwise.
        **options: Backend-specific keyword arguments (``threads``, ``providers`` for ONNX
            Runtime...); each candidate gets those its constructor accepts. Every backend
            takes ``outputs``: the graph outputs to compute (``base.graph_outputs_for``;
            default all), checked here before any backend is tried.

    Returns:
        ``(backend, reason)``, e.g. ``'tensorrt: module not installed; onnxruntime CUDA
        provider: not available (providers: CPUExecutionProvider); torch CUDA: no GPU ->
        onnxruntime CPU'``.

    Raises:
        ValueError: Unknown backend / device / precision name, an impossible combination,
            an option that no candidate backend accepts, or unknown output names.
        BackendUnavailable: None of the candidates can run here; lists every reason.
        BackendError: The package itself is broken (corrupt ONNX, bad weights).
    """
    check_choice('precision', precision, PRECISION_CHOICES)
    graph_outputs_for(manifest, options.get('outputs'))
    candidates = candidates_for(backend, device)
    unused = set(options)
    for candidate in candidates:
        unused -= set(_accepted(_backend_class_or_none(candidate), options))
    if unused:
        raise ValueError(
            f'backend option(s) {", ".join(sorted(unused))} are not accepted by backend '
            f'{backend} on device {device}')
    failures: List[str] = []
    for candidate in candidates:
        reason = _probe(candidate)
        if reason is None:
            cls = _backend_class(candidate)
            kwargs = _accepted(cls, options)
            kwargs['precision'] = resolve_precision(precision, candidate)
            if candidate.backend != 'tensorrt':
                kwargs['device'] = candidate.device
            try:
                created = cls(manifest, package_dir, **kwargs)
            except BackendUnavailable as error:
                reason = str(error)
            else:
                chosen = f'{candidate.label} ({kwargs["precision"]})'
                if not failures:
                    return created, f'{chosen}: best available for backend {backend}, ' \
                                    f'device {device}'
                return created, f'{"; ".join(failures)} \u2192 {chosen}'
        failures.append(f'{_probe_label(candidate)}: {reason}')
    raise BackendUnavailable(
        f'no backend can run package {package_dir} with backend {backend}, device {device}, '
        f'precision {precision}: {"; ".join(failures)}')


def _backend_class_or_none(candidate: Candidate) -> Callable[..., Backend]:
    """The candidate's class, or a stand-in accepting nothing when its module is absent."""
    try:
        return _backend_class(candidate)
    except ImportError:
        return _accepts_nothing


def _accepts_nothing(manifest, package_dir) -> None:  # pragma: no cover - signature only
    raise BackendUnavailable('backend module not present')
