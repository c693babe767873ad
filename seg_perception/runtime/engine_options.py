"""What a TensorRT engine is built for and with: the platform, the builder settings, the key.

:class:`Platform` (TensorRT version, GPU, strong typing) and :class:`BuildOptions` (precision,
workspace, layers kept in FP32, INT8 calibration images, batch profile) make the engine's
cache key (:func:`make_engine_key`). TensorRT is imported only through
:func:`import_tensorrt`, when a build, a backend or :func:`probe_platform` first needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ..manifest import ModelManifest
from .base import BackendUnavailable
from .engine_cache import EngineKey

BUILD_PRECISIONS = ('fp32', 'fp16', 'int8')
DEFAULT_WORKSPACE_MB = 1024

#: ONNX node-name prefix of the fused post-processing (``export.graph.FusedSegmentationGraph``).
#: Reduced-precision builds keep these layers in FP32: the grouping's squared grid
#: distances reach ~1e5 (FP16 tops out at 65504 with ~30 units of resolution there), and
#: the post-processing is a few percent of the engine's time.
POSTPROCESS_LAYERS = '/postprocess/'


def import_tensorrt() -> Any:
    """Import ``tensorrt`` or raise ``BackendUnavailable`` saying how to get it."""
    try:
        import tensorrt
    except (ImportError, OSError) as error:  # OSError: libnvinfer.so missing or broken
        raise BackendUnavailable(
            f'TensorRT Python bindings are not importable ({error}); on a Jetson they come with '
            'JetPack (sudo apt install python3-libnvinfer; in a virtual environment use '
            '--system-site-packages), on a PC: pip install tensorrt') from None
    return tensorrt


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split('.')[0])


def needs_strong_typing(trt: Any) -> bool:
    """TensorRT >= 11 has no weak typing: precision comes from the ONNX graph's types."""
    return not hasattr(trt.BuilderFlag, 'FP16')


@dataclass(frozen=True)
class BuildOptions:
    """Builder settings.

    Attributes:
        precision: ``fp32``, ``fp16`` or ``int8`` (INT8 also enables FP16 for the layers
            INT8 cannot run).
        workspace_mb: Memory-pool limit for tactic workspace. Lower it on an 8 GB Orin Nano
            if the build is ``Killed``.
        fp32_layers: Layer-name patterns kept in FP32 (precision constraints), for FP16
            accuracy problems. ``fnmatch`` patterns; one without ``*?[`` matches as a
            substring (``/head/`` keeps every layer of the head).
        calib_images_dir: Folder of images for INT8 entropy calibration.
        calib_max_images: Use at most this many calibration images.
        timing_cache_path: Timing cache read before and written after the build (makes
            rebuilds several times faster); None for none.
        batch_profile: ``(min, opt, max)`` batch for graphs exported with a dynamic batch
            axis; None = the manifest's static batch.
        tf32: Allow TF32 in FP32 layers (faster on Ampere / Orin, 10-bit mantissa inputs).
            Off: the layers kept in FP32 are FP32.
    """

    precision: str = 'fp16'
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    fp32_layers: Tuple[str, ...] = ()
    calib_images_dir: Optional[str] = None
    calib_max_images: int = 500
    timing_cache_path: Optional[str] = None
    batch_profile: Optional[Tuple[int, int, int]] = None
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.precision not in BUILD_PRECISIONS:
            raise ValueError(f'precision {self.precision!r} is not one of '
                             f'{", ".join(BUILD_PRECISIONS)}')
        if int(self.workspace_mb) <= 0:
            raise ValueError(f'workspace_mb must be positive, got {self.workspace_mb}')
        if self.precision == 'int8' and not self.calib_images_dir:
            raise ValueError('precision int8 needs calibration images (build-engine '
                             '--calib-images DIR, node parameter engine_calib_images_dir): a '
                             'folder of representative camera frames')
        if self.batch_profile is not None:
            low, opt, high = (int(b) for b in self.batch_profile)
            if not 1 <= low <= opt <= high:
                raise ValueError(f'batch_profile must be 1 <= min <= opt <= max, got '
                                 f'{self.batch_profile}')
        object.__setattr__(self, 'fp32_layers', tuple(self.fp32_layers))

    def fp32_patterns(self) -> Tuple[str, ...]:
        """Layer patterns held in FP32: ``fp32_layers`` plus, for FP16 / INT8 builds, the
        post-processing (``POSTPROCESS_LAYERS``). Part of the engine's cache key."""
        if self.precision == 'fp32' or POSTPROCESS_LAYERS in self.fp32_layers:
            return self.fp32_layers
        return self.fp32_layers + (POSTPROCESS_LAYERS,)

    def profile_for(self, manifest: ModelManifest) -> Tuple[int, int, int]:
        if self.batch_profile is None:
            return (manifest.batch, manifest.batch, manifest.batch)
        return tuple(int(b) for b in self.batch_profile)


@dataclass(frozen=True)
class Platform:
    """The TensorRT and GPU an engine is built on (part of its cache key)."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    strongly_typed: bool
    multiprocessors: int = 0
    memory_gib: int = 0


def probe_platform(device: int = 0) -> Platform:
    """TensorRT version and GPU of this machine; raises ``BackendUnavailable`` if absent."""
    from . import cuda_memory
    trt = import_tensorrt()
    cuda_memory.load_cudart()
    if cuda_memory.device_count() <= device:
        raise BackendUnavailable(f'CUDA device {device} does not exist')
    gpu = cuda_memory.gpu_properties(device)
    return Platform(str(trt.__version__), gpu.name, gpu.compute_capability_text,
                    needs_strong_typing(trt), gpu.multiprocessors, gpu.memory_gib)


def make_engine_key(manifest: ModelManifest, onnx_sha256: str, platform: Platform,
                    options: BuildOptions, calibration_sha256: str = '') -> EngineKey:
    """The key of the engine that ``options`` would build for ``manifest`` on ``platform``."""
    profile = options.profile_for(manifest)
    shapes = [('image', (profile[1], 3, manifest.input_height, manifest.input_width))]
    if manifest.is_panoptic:
        shapes.append(('center_threshold', (1,)))
    return EngineKey(
        onnx_sha256=onnx_sha256, tensorrt_version=platform.tensorrt_version,
        gpu_name=platform.gpu_name, compute_capability=platform.compute_capability,
        precision=options.precision, input_shapes=tuple(shapes), batch_profile=profile,
        fp32_layers=options.fp32_patterns() if not platform.strongly_typed
        else options.fp32_layers,
        calibration_sha256=calibration_sha256 if options.precision == 'int8' else '',
        strongly_typed=platform.strongly_typed, gpu_multiprocessors=platform.multiprocessors,
        gpu_memory_gib=platform.memory_gib, tf32=bool(options.tf32))
