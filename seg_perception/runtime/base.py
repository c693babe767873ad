"""The one small interface every inference backend implements.

A backend runs the exported graph (see ``seg_perception.manifest`` for its inputs and
outputs) on a preprocessed batch. It knows nothing of image sizes, resizing or ROS: the
``Segmenter`` does that, so node, evaluator, demo and benchmarks share one path.

A backend may be asked for fewer graph outputs than the manifest lists (``outputs=``, see
``graph_outputs_for``): it then runs a graph pruned to those outputs
(``packages.output_pruning``), and its ``manifest`` is a ``GraphManifest`` naming the
inputs and outputs of that graph.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, fields
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..manifest import ModelManifest, PANOPTIC_OUTPUTS

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


class GraphManifest(ModelManifest):
    """A package's manifest for a graph pruned to fewer outputs (and maybe inputs).

    Every field is the package's; only ``output_names`` and ``input_names`` are those of
    the pruned graph. Made by ``graph_manifest``; never saved.
    """

    _graph_inputs: Tuple[str, ...] = ()
    _graph_outputs: Tuple[str, ...] = ()

    @property
    def output_names(self) -> Tuple[str, ...]:
        return self._graph_outputs

    @property
    def input_names(self) -> Tuple[str, ...]:
        return self._graph_inputs


def graph_manifest(manifest: ModelManifest, inputs: Sequence[str],
                   outputs: Sequence[str]) -> ModelManifest:
    """``manifest`` itself when a graph has all its inputs and outputs, else a
    ``GraphManifest`` with these ``inputs`` and ``outputs`` (names of the graph contract)."""
    inputs, outputs = tuple(inputs), tuple(outputs)
    if inputs == manifest.input_names and outputs == manifest.output_names:
        return manifest
    view = GraphManifest(**{f.name: getattr(manifest, f.name) for f in fields(manifest)})
    view._graph_inputs, view._graph_outputs = inputs, outputs
    return view


def graph_outputs_for(manifest: ModelManifest,
                      outputs: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The graph outputs a backend computes when asked for ``outputs``.

    Args:
        manifest: The package's manifest.
        outputs: Names of the graph contract (``semantic``, ``confidence``, ``instance``,
            ``panoptic``, ``instance_score``), ``semantic`` among them; names this graph
            does not have (``instance`` of a semantic graph) are ignored. None = all.

    Returns:
        The manifest's output names that were asked for, in the manifest's order.

    Raises:
        ValueError: A name outside the contract (the message lists the valid ones), or no
            ``semantic``.
    """
    if outputs is None:
        return manifest.output_names
    from ..packages.output_pruning import check_output_names
    wanted = check_output_names(outputs, PANOPTIC_OUTPUTS)
    return tuple(name for name in manifest.output_names if name in wanted)


class Backend(abc.ABC):
    """Runs a model package's fused graph.

    Implementations must be safe to call from one thread at a time (the node runs inference
    in a single worker thread; a backend may bind its CUDA context / execution context to the
    thread that first calls ``run``).
    """

    manifest: ModelManifest
    info: BackendInfo

    @property
    def output_names(self) -> Tuple[str, ...]:
        """The graph outputs ``run`` returns (all the package's unless fewer were asked
        for when the backend was made)."""
        return self.manifest.output_names

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
            A dict with ``output_names`` as keys (the manifest's, or the fewer asked for),
            numpy arrays of the graph's dtypes and shapes (see ``seg_perception.manifest``):
            semantic int32 (B, H, W), confidence float32 (B, H, W), instance / panoptic
            int32 (B, H, W), instance_score float32 (B, top_k); owned by the caller.
        """

    def close(self) -> None:
        """Release device memory and sessions. Idempotent."""

    def __enter__(self) -> 'Backend':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
