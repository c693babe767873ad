"""The segmentation network with its post-processing, as one torch module.

``FusedSegmentationGraph`` is the one module both the ONNX export (``onnx_export``) and the
torch backend run::

    image float32 (B, 3, H, W) raw 0..255 RGB
      -> (image / 255 - mean) / std          normalisation (manifest mean/std, 0..1 scale)
      -> network                             registry forward contract (semantic/center/offset;
                                             ENet: semantic_packed, see FusedPostprocess)
      -> FusedPostprocess                    argmax, confidence, panoptic grouping
      -> outputs in the order of manifest.output_names (int32 / float32, see manifest.py)
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ..manifest import ModelManifest


class ExportError(RuntimeError):
    """The network cannot be exported or the exported graph breaks the graph contract."""


class FusedSegmentationGraph(nn.Module):
    """Normalisation -> network -> fused post-processing, with the graph's inputs and outputs.

    Args:
        network: A registry network (``forward(x) -> dict``, attributes ``num_classes`` and
            ``panoptic``); its class count must match the manifest's label set.
        manifest: Gives mean/std, task, label set, label divisor and post-processing settings.

    ``forward(image, center_threshold=None)``:
        image: float32 (B, 3, H, W), RGB, raw 0..255.
        center_threshold: float32 (1,) -- panoptic graphs only (defaults to the manifest's).
        Returns the tuple of outputs named by ``manifest.output_names``.
    """

    def __init__(self, network: nn.Module, manifest: ModelManifest) -> None:
        super().__init__()
        from ..postprocess.fused import FusedPostprocess
        num_classes = getattr(network, 'num_classes', None)
        if num_classes is not None and int(num_classes) != manifest.label_set.num_classes:
            raise ExportError(
                f'network {manifest.architecture} has {num_classes} classes but label set '
                f'{manifest.label_set.name!r} has {manifest.label_set.num_classes}')
        has_panoptic_head = bool(getattr(network, 'panoptic', False))
        if manifest.is_panoptic and not has_panoptic_head:
            raise ExportError(
                f'manifest task is panoptic but network {manifest.architecture} was built '
                'without the panoptic head (build_model(..., panoptic=True))')
        self.network = network
        self.panoptic = manifest.is_panoptic
        self.flip_test = bool(manifest.flip_test)
        # ENet can hand its logits over packed (``models.layers.packed_transposed_conv``);
        # flip-test averaging needs them as an image.
        self.packed_semantic = bool(getattr(network, 'packed_semantic_layer', None)) \
            and not self.flip_test
        self.output_names: Tuple[str, ...] = tuple(manifest.output_names)
        # (x / 255 - mean) / std == (x - 255 mean) / (255 std): one Sub and one Mul in the graph.
        mean = torch.tensor([255.0 * m for m in manifest.mean], dtype=torch.float32)
        inverse_std = torch.tensor([1.0 / (255.0 * s) for s in manifest.std], dtype=torch.float32)
        self.register_buffer('pixel_mean', mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer('pixel_inverse_std', inverse_std.view(1, 3, 1, 1), persistent=False)
        self.register_buffer(
            'default_center_threshold',
            torch.tensor([manifest.postprocess.center_threshold], dtype=torch.float32),
            persistent=False)
        labels = manifest.label_set
        self.postprocess = FusedPostprocess(
            num_classes=labels.num_classes, thing_ids=labels.thing_ids,
            settings=manifest.postprocess, label_divisor=manifest.label_divisor,
            void_id=labels.void_id, panoptic=manifest.is_panoptic,
            height=manifest.input_height, width=manifest.input_width,
            instance_stride=int(getattr(network, 'instance_stride', 1)),
            packed_semantic=self.packed_semantic)

    def _network_dtype(self) -> torch.dtype:
        for parameter in self.network.parameters():
            return parameter.dtype
        return torch.float32

    def _normalised(self, image: torch.Tensor) -> torch.Tensor:
        normalised = (image - self.pixel_mean) * self.pixel_inverse_std
        dtype = self._network_dtype()
        if dtype != torch.float32:  # torch backend in FP16: post-processing stays float32
            normalised = normalised.to(dtype)
        return normalised

    def heads(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The network's raw heads for float32 (B, 3, H, W) raw RGB 0..255: ``semantic``
        (B, C, H, W) logits and, for panoptic networks, ``center`` (B, 1, H/r, W/r) and
        ``offset`` (B, 2, H/r, W/r), in the network's dtype (normalisation as in the graph).

        With the manifest's ``flip_test`` the network runs once on a batch of 2B (the
        images, then their mirror images) and the semantic logits are the mean of the two,
        mirrored back; centre and offset come from the images as given (averaging those
        too scored lower: see ``apply_flip_test``)."""
        normalised = self._normalised(image)
        if not self.flip_test:
            return self.network(normalised)
        batch = normalised.shape[0]
        both = self.network(torch.cat([normalised, torch.flip(normalised, dims=[3])], dim=0))
        return apply_flip_test(both, batch)

    def forward(self, image: torch.Tensor,
                center_threshold: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        if self.packed_semantic:
            heads = self.network(self._normalised(image), packed_semantic=True)
            semantic = heads['semantic_packed'].float()
        else:
            heads = self.heads(image)
            semantic = heads['semantic'].float()
        if not self.panoptic:
            return tuple(self.postprocess(semantic, None, None, None))
        if center_threshold is None:
            center_threshold = self.default_center_threshold
        return tuple(self.postprocess(semantic, heads['center'].float(),
                                      heads['offset'].float(), center_threshold))


def apply_flip_test(heads: Dict[str, torch.Tensor], batch: int) -> Dict[str, torch.Tensor]:
    """Combine the heads of a 2B batch (B images, then the same B mirrored left-right).

    Returns ``semantic`` (B, C, H, W): the mean of the direct logits and the mirrored
    pass's logits flipped back; ``center`` and ``offset`` (when present): the direct pass's.
    Mirroring the centre heatmap and offsets back (negating dx) and averaging them was
    measured on DeepLab's validation frames and lowered PQ (0.5932 -> 0.5869), while the
    averaged semantic map raised it (-> 0.6059).
    """
    combined = {name: value[:batch] for name, value in heads.items()}
    mirrored = torch.flip(heads['semantic'][batch:], dims=[3])
    combined['semantic'] = (heads['semantic'][:batch] + mirrored) * 0.5
    return combined
