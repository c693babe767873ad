"""The one small interface every inference backend implements.

A backend runs the exported graph (see ``seg_perception.manifest`` for its inputs and
outputs) on a preprocessed batch. It knows nothing of image sizes, resizing or ROS: the
``Segmenter`` does that, so node, evaluator, demo and benchmarks share one path.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Dict

import numpy as np

from ..manifest import ModelManifest

BACKEND_CHOICES = ('auto', 'tensorrt', 'onnxruntime', 'torch')
PRECISION_CHOICES = ('auto', 'fp32', 'fp16', 'int8')
DEVICE_CHOICES = ('auto', 'cpu', 'cuda')


class BackendError(RuntimeError):
    """A backend cannot be created or cannot run (missing library, bad model, device)."""


class BackendUnavailable(BackendError):
    """The backend's library or device is not present on this machine."""


@dataclass(frozen=True)
class BackendInfo:
    """What a backend actually runs on, for logs, diagnostics and benchmarks.

    Attributes:
        name: ``onnxruntime``, ``torch`` or ``tensorrt``.
        device: ``cpu`` or ``cuda:N``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        detail: Free text: active execution providers, engine path, GPU name...
    """

    name: str
    device: str
    precision: str
    detail: str = ''


class Backend(abc.ABC):
    """Runs a model package's fused graph.

    Implementations must be safe to call from one thread at a time (the node runs inference
    in a single worker thread; a backend may bind its CUDA context / execution context to the
    thread that first calls ``run``).
    """

    manifest: ModelManifest
    info: BackendInfo

    @property
    def batch_size(self) -> int:
        """Static batch size B of the graph; ``run`` receives exactly B images."""
        return self.manifest.batch

    def check_input(self, images: np.ndarray) -> None:
        """Raise ``ValueError`` unless ``images`` is float32 (B, 3, H, W) of the graph's size."""
        manifest = self.manifest
        expected = (manifest.batch, 3, manifest.input_height, manifest.input_width)
        if images.shape != expected or images.dtype != np.float32:
            raise ValueError(
                f'images must be float32 {expected}, got {images.dtype} {images.shape}')

    @abc.abstractmethod
    def run(self, images: np.ndarray, center_threshold: float) -> Dict[str, np.ndarray]:
        """Run the graph.

        Args:
            images: float32 (B, 3, H, W) RGB, raw 0..255, C-contiguous, H and W the
                manifest's input size.
            center_threshold: Instance centre threshold (ignored by semantic graphs).

        Returns:
            A dict with the manifest's ``output_names`` as keys, numpy arrays of the graph's
            dtypes and shapes (see ``seg_perception.manifest``), owned by the caller.
        """

    def close(self) -> None:
        """Release device memory and sessions. Idempotent."""

    def __enter__(self) -> 'Backend':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
