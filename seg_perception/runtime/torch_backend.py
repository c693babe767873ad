"""PyTorch backend: runs the same fused graph (normalise -> network -> post-processing) as
the ONNX export, built from the package's ``weights.pt``.

FP16 (CUDA only) puts just the network in half precision; ``FusedSegmentationGraph`` keeps
normalisation and post-processing in float32, so the outputs keep the contract dtypes and
the centre / offset arithmetic is not rounded.

Asked for fewer outputs (``outputs=``), it still runs the whole graph (the outputs share
almost all of their work in torch's eager mode) and returns only those.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from ..manifest import ModelManifest
from .base import (
    Backend,
    BackendError,
    BackendInfo,
    BackendUnavailable,
    graph_manifest,
    graph_outputs_for,
)

TORCH_DEVICE_CHOICES = ('cpu', 'cuda')
TORCH_PRECISION_CHOICES = ('fp32', 'fp16')


def import_torch():
    """Import torch or raise ``BackendUnavailable`` saying how to get it."""
    try:
        import torch
    except ImportError as error:
        raise BackendUnavailable(
            f'torch is not installed ({error}); the torch backend needs PyTorch '
            '(onnxruntime or tensorrt run packages without it)') from None
    return torch


class TorchBackend(Backend):
    """Runs ``export.graph.FusedSegmentationGraph`` on the package's torch weights.

    Args:
        manifest: The package's manifest.
        package_dir: Package directory holding the weights file (without one, the weights
            are read from its ONNX graph).
        device: ``cpu`` or ``cuda`` (``cuda`` means ``cuda:0``).
        precision: ``fp32``, or ``fp16`` (CUDA only).
        outputs: Graph outputs ``run`` returns (``semantic`` among them; see
            ``base.graph_outputs_for``); None = all. ``manifest`` is then a
            ``GraphManifest`` with these outputs (and the package's inputs).

    Raises:
        BackendUnavailable: torch or CUDA is missing, fp16 on CPU, or the package's
            architecture is not a torch network of this project (an imported ONNX graph).
        BackendError: The weights are missing or do not load into the manifest's
            architecture, its ``architecture_kwargs`` do not fit the builder, or its
            mean / std / settings do not make a graph.
        ValueError: Bad device or output names.
    """

    def __init__(self, manifest: ModelManifest, package_dir: str, device: str = 'cpu',
                 precision: str = 'fp32', outputs: Optional[Sequence[str]] = None) -> None:
        wanted = graph_outputs_for(manifest, outputs)
        if device not in TORCH_DEVICE_CHOICES:
            raise ValueError(
                f'device {device!r} is not one of {", ".join(TORCH_DEVICE_CHOICES)}')
        if precision not in TORCH_PRECISION_CHOICES:
            raise BackendUnavailable(
                f'torch backend precision must be one of {", ".join(TORCH_PRECISION_CHOICES)}, '
                f'not {precision!r}')
        if precision == 'fp16' and device != 'cuda':
            raise BackendUnavailable('torch backend runs fp16 only on device cuda')
        torch = import_torch()
        if device == 'cuda' and not torch.cuda.is_available():
            raise BackendUnavailable('torch CUDA: no GPU visible to torch')
        from ..models import get_model_spec, UnknownModelError
        try:
            get_model_spec(manifest.architecture)
        except UnknownModelError:
            raise BackendUnavailable(
                f'torch backend: architecture {manifest.architecture!r} has no torch network '
                'here (an imported ONNX graph runs on onnxruntime or tensorrt)') from None
        from ..export.graph import FusedSegmentationGraph
        from ..packages.loading import load_torch_network

        self.manifest = graph_manifest(manifest, manifest.input_names, wanted)
        self._graph_outputs = manifest.output_names
        self._torch = torch
        self._device = torch.device('cuda:0' if device == 'cuda' else 'cpu')
        try:
            network = load_torch_network(package_dir, manifest, self._device)
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            raise BackendError(
                f'cannot load the torch weights of package {package_dir}: {error}') from None
        if precision == 'fp16':
            # FusedSegmentationGraph follows the network's dtype and casts its heads back.
            network = network.half()
        try:
            graph = FusedSegmentationGraph(network, manifest)
        except (RuntimeError, TypeError, ValueError) as error:  # a manifest changed after load
            raise BackendError(f'cannot build the torch graph of package {package_dir} from its '
                               f'manifest: {type(error).__name__}: {error}') from None
        self._graph = graph.to(self._device).eval()
        self._threshold = torch.zeros((1,), dtype=torch.float32, device=self._device)
        detail = torch.cuda.get_device_name(self._device) if device == 'cuda' else \
            f'torch {torch.__version__}, {torch.get_num_threads()} threads'
        self.info = BackendInfo(name='torch', device=str(self._device), precision=precision,
                                detail=detail)

    def run(self, images: np.ndarray, center_threshold: float) -> Dict[str, np.ndarray]:
        self.check_input(images)
        manifest = self.manifest
        if self._graph is None:
            raise BackendError('torch backend is closed')
        torch = self._torch
        names = self._graph_outputs
        with torch.inference_mode():
            batch = torch.from_numpy(images).to(self._device, non_blocking=False)
            if manifest.is_panoptic:
                self._threshold.fill_(float(center_threshold))
                outputs = self._graph(batch, self._threshold)
            else:
                outputs = self._graph(batch)
            if isinstance(outputs, dict):
                values = [outputs[name] for name in names]
            else:
                values = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            if len(values) != len(names):
                raise BackendError(
                    f'fused graph returned {len(values)} outputs, the manifest names '
                    f'{len(names)}: {", ".join(names)}')
            # The graph allocates fresh output tensors every call, so sharing memory with
            # them (CPU .numpy()) still leaves the caller owning its arrays.
            wanted = manifest.output_names
            return {name: value.detach().cpu().numpy()
                    for name, value in zip(names, values) if name in wanted}

    def close(self) -> None:
        self._graph = None
        if getattr(self, '_device', None) is not None and self._device.type == 'cuda':
            self._torch.cuda.empty_cache()
