"""The Panoptic-DeepLab training loss.

Weighted cross-entropy with hard-pixel mining for the semantic head (small instances
weighted up), MSE on the centre heatmap, L1 on the offsets.
"""

from __future__ import annotations

from typing import Callable, Optional

from .config import TrainConfig


def panoptic_deeplab_loss(outputs, batch, config: TrainConfig, void_id: int,
                          mean_counts: Optional[Callable] = None):
    """Weighted, hard-pixel-mined cross-entropy + weighted centre MSE + weighted offset L1.

    Args:
        outputs: Network dict: ``semantic`` (N,C,H,W), optionally ``center`` (N,1,H/r,W/r)
            and ``offset`` (N,2,H/r,W/r) at the network's instance stride r, upsampled
            bilinearly to the (N,H,W) targets here.
        batch: Targets as produced by ``TrainingSamples`` (tensors on the same device).
        mean_counts: Under data-parallel training, maps this process's tensor of loss
            normalisers (valid pixels, centre and offset weight sums) to their mean over
            the processes (``Distributed.mean_counts``), so that the mean of the processes'
            losses is the loss of the global batch. Hard-pixel mining still keeps the
            hardest pixels of each process's own batch.

    Returns:
        (total loss tensor, dict of the float parts).
    """
    import torch
    import torch.nn.functional as functional

    from ..models.heads import upsample_instance_outputs
    outputs = upsample_instance_outputs(outputs, *batch['semantic'].shape[-2:])
    pixel_loss = functional.cross_entropy(outputs['semantic'].float(), batch['semantic'],
                                          ignore_index=void_id, reduction='none')
    pixel_loss = (pixel_loss * batch['semantic_weights']).flatten()
    local_valid = int((batch['semantic'] != void_id).sum())
    has_center = 'center' in outputs
    counts = [float(local_valid)]
    if has_center:
        center_weights = batch['center_weights'].unsqueeze(1)
        offset_weights = batch['offset_weights'].unsqueeze(1)
        counts += [float(center_weights.sum()), float(offset_weights.sum())]
    counts = torch.tensor(counts, dtype=torch.float64)
    if mean_counts is not None:
        counts = mean_counts(counts)
    valid = float(counts[0])
    if valid == 0:
        semantic_loss = pixel_loss.sum() * 0.0
    elif config.hard_pixel_ratio < 1.0:
        keep = max(1, int(local_valid * config.hard_pixel_ratio))
        semantic_loss = torch.topk(pixel_loss, keep, sorted=False).values.mean()
    else:
        semantic_loss = pixel_loss.sum() / valid
    parts = {'semantic': float(semantic_loss.detach())}
    total = semantic_loss
    if has_center:
        center_error = (outputs['center'].float() - batch['center']) ** 2 * center_weights
        center_loss = center_error.sum() / max(float(counts[1]), 1.0)
        offset_error = (outputs['offset'].float() - batch['offset']).abs() * offset_weights
        offset_loss = offset_error.sum() / max(2.0 * float(counts[2]), 1.0)
        total = (total + config.center_loss_weight * center_loss
                 + config.offset_loss_weight * offset_loss)
        parts['center'] = float(center_loss.detach())
        parts['offset'] = float(offset_loss.detach())
    parts['total'] = float(total.detach())
    return total, parts
