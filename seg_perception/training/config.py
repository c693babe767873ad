"""What defines a training run (``TrainConfig``) and the checks made before it starts.

The configuration is saved in every checkpoint and in the exported manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Any, Dict

#: ``TrainConfig.data`` for the procedural scenes of ``data.synthetic``.
SYNTHETIC = 'synthetic'


class TrainingError(RuntimeError):
    """Training cannot start or continue (bad data, bad checkpoint, bad option)."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint and the manifest).

    Attributes:
        model: Registry name of the architecture.
        task: ``semantic`` or ``panoptic``.
        data: ``synthetic`` or a Cityscapes-format root directory.
        height, width: Network input size (training crops and export size).
        epochs, batch_size, lr, weight_decay: Optimisation (Adam, poly decay).
            ``batch_size`` is the global batch: under ``torchrun`` each of the N processes
            takes ``batch_size / N`` of it, and ``lr`` applies to the global batch, so N
            processes train as one process with the same configuration would.
        train_frames: Frames per epoch for synthetic data (each frame index is a new scene).
        val_frames: Held-out frames evaluated at each validation.
        val_every: Validate every N epochs (and after the last).
        seed: Seed of the weights, the synthetic training scenes and the augmentation.
        workers: DataLoader worker processes.
        device: ``auto``, ``cpu`` or ``cuda``.
        hard_pixel_ratio: Fraction of the hardest semantic pixels kept in the loss (1 = all).
        center_loss_weight, offset_loss_weight: Panoptic-DeepLab's 200 and 0.01.
        small_instance_area, small_instance_weight: Up-weighting of small instances.
        min_scale, max_scale: Random scale augmentation range.
        class_balanced_crops: Chance that a training crop is placed over a class drawn
            uniformly from those in the frame (see ``AugmentConfig.class_balanced_crop``).
        mixed_precision: ``auto`` (bfloat16 autocast on CUDA, and on CPUs with native
            bfloat16 units such as AMX or AVX512-BF16; float32 elsewhere), ``bf16`` or
            ``off``. Losses, optimiser state and exported weights stay float32.
        crop_height, crop_width: Training crop size (0: the network size). Smaller crops of
            the full-size frames keep object scale and cut the cost per sample (CPU
            fine-tuning); validation and export stay at the network size.
        frame_cache: Directory into which the synthetic training frames are generated once
            (memory-mapped) instead of being drawn again every epoch, in a sub-directory
            named by what made them (``frames.cache_key``); empty: no cache.
        init_weights: Start from these weights (a ``.pt`` state dict, a checkpoint or a model
            package directory such as a zoo model) instead of random initialisation.
        init_partial: With ``init_weights``: load only the tensors whose names and shapes
            match (e.g. after a head change) and log how many; at least half must match.
        backbone_weights: Start the encoder (ResNet-18 / ResNet-50 / MobileNetV3-Large) from
            torchvision's ImageNet checkpoint in this file (``models.pretrained``); the
            decoder and heads keep their random initialisation. Excludes ``init_weights``.
        max_minutes: Stop after the epoch during which this much time has passed, then
            validate and export as after the last epoch (0: no limit).
        channels_last: Train with weights and images in channels-last (NHWC) memory
            layout, which oneDNN and tensor cores run faster for some networks (ENet steps
            1.34x faster on the AMX CPU here, DeepLab MobileNetV3 not). Results are the same
            computation; checkpoints and the exported package are layout-free.
        sync_batchnorm: With more than one process, take BatchNorm statistics over the
            whole global batch (``torch.nn.SyncBatchNorm``, or its gloo form on the CPU)
            rather than each process's slice of it; no effect with one process.
    """

    model: str
    task: str = 'panoptic'
    data: str = SYNTHETIC
    height: int = 512
    width: int = 1024
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    train_frames: int = 2000
    val_frames: int = 50
    val_every: int = 1
    seed: int = 0
    workers: int = 2
    device: str = 'auto'
    hard_pixel_ratio: float = 0.2
    center_loss_weight: float = 200.0
    offset_loss_weight: float = 0.01
    small_instance_area: int = 1024
    small_instance_weight: float = 3.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    class_balanced_crops: float = 0.0
    mixed_precision: str = 'auto'
    crop_height: int = 0
    crop_width: int = 0
    frame_cache: str = ''
    max_minutes: float = 0.0
    init_weights: str = ''
    init_partial: bool = False
    backbone_weights: str = ''
    channels_last: bool = False
    sync_batchnorm: bool = True
    extra: Dict[str, Any] = field(default_factory=dict)


def check_config(config: TrainConfig, resume: bool) -> None:
    """Refuse options that cannot work, before any data is drawn."""
    from ..models import get_model_spec
    if config.task not in ('semantic', 'panoptic'):
        raise TrainingError(f'task {config.task!r} is not one of semantic, panoptic')
    spec = get_model_spec(config.model)
    crop = (config.crop_height or config.height, config.crop_width or config.width)
    for what, (height, width) in (('size', (config.height, config.width)), ('crop', crop)):
        if height <= 0 or width <= 0 or height % spec.size_divisor \
                or width % spec.size_divisor:
            raise TrainingError(f'{what} {width}x{height} is not a multiple of '
                                f'{spec.size_divisor}, which {config.model} needs')
    if config.data != SYNTHETIC and not os.path.isdir(config.data):
        raise TrainingError(f'data {config.data!r} is neither "synthetic" nor a directory')
    if config.backbone_weights and config.init_weights:
        raise TrainingError('backbone weights and initial weights exclude each other: the '
                            'initial weights already give the encoder its values')
    if config.init_weights and not resume and not os.path.exists(config.init_weights):
        raise TrainingError(f'initial weights file {config.init_weights} does not exist')
    if config.backbone_weights and not resume and not os.path.isfile(config.backbone_weights):
        raise TrainingError(f'backbone weights file {config.backbone_weights} does not exist')
