"""Training: one loop for every registered architecture, semantic or panoptic.

Losses follow Panoptic-DeepLab: weighted cross-entropy with hard-pixel mining for the
semantic head (small instances weighted up), MSE on the centre heatmap, L1 on the offsets.
Validation runs the same ``FusedSegmentationGraph`` that export and the torch backend use,
so the numbers logged are those of the exported model, post-processing included.

Checkpoints hold only tensors and plain numbers, so they load with ``weights_only=True``.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
import os
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..labels import cityscapes, LabelSet
from ..manifest import ModelManifest, PostprocessSettings
from ..tools.progress import ProgressBar

SYNTHETIC = 'synthetic'
#: Seed of held-out synthetic validation frames: never used for training seeds below it.
SYNTHETIC_VALIDATION_SEED = 1_000_003


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
            (memory-mapped) instead of being drawn again every epoch; empty: no cache.
        init_weights: Start from these weights (a ``.pt`` state dict, a checkpoint or a model
            package directory such as a zoo model) instead of random initialisation.
        init_partial: With ``init_weights``: load only the tensors whose names and shapes
            match (e.g. after a head change) and log how many; at least half must match.
        max_minutes: Stop after the epoch during which this much time has passed, then
            validate and export as after the last epoch (0: no limit).
        channels_last: Train with weights and images in channels-last (NHWC) memory
            layout, which oneDNN and tensor cores run faster for some networks (ENet steps
            1.34x faster on the AMX CPU here, DeepLab MobileNetV3 not). Results are the same
            computation; checkpoints and the exported package are layout-free.
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
    channels_last: bool = False
    extra: Dict[str, Any] = field(default_factory=dict)


class CachedFrame:
    """A frame read back from the on-disk frame cache (same fields as a synthetic frame)."""

    def __init__(self, image: np.ndarray, semantic: np.ndarray, instance: np.ndarray) -> None:
        self.image = image
        self.semantic = semantic
        self.instance = instance


def _generate_into_cache(job: Tuple[str, int, int, int, int, int, int]) -> None:
    """Worker: generate frames [start, stop) of a seed into the cache's memory maps."""
    from ..data.synthetic.generator import SceneGenerator
    directory, count, width, height, seed, start, stop = job
    maps = _open_cache(directory, count, height, width, 'r+')
    generator = SceneGenerator(width=width, height=height, seed=seed)
    for index in range(start, stop):
        frame = generator.generate(index)
        maps[0][index] = frame.image
        maps[1][index] = frame.semantic
        maps[2][index] = frame.instance
    for array in maps:
        array.flush()


def _open_cache(directory: str, count: int, height: int, width: int, mode: str):
    shapes = (('image', np.uint8, (count, height, width, 3)),
              ('semantic', np.uint8, (count, height, width)),
              ('instance', np.uint16, (count, height, width)))
    return tuple(np.lib.format.open_memmap(os.path.join(directory, f'{name}.npy'), mode=mode,
                                           dtype=dtype, shape=shape if mode == 'w+' else None)
                 for name, dtype, shape in shapes)


class FrameSource:
    """Indexable frames with ``image`` (H,W,3) uint8, ``semantic`` (H,W), ``instance`` (H,W).

    ``synthetic`` generates frame ``i`` of a seed on demand, or reads it from a frame cache
    made once by ``materialize`` (generation is far slower than augmentation, and a GPU
    eats frames faster than a few cores can draw them); a directory is read as the
    Cityscapes format (``split`` = train / val), each frame resized to the network size as
    the node resizes camera frames (``preprocess.resize_labelled_frame``), so augmentation
    scales and validation measure around the scale the model will see.
    """

    def __init__(self, data: str, split: str, width: int, height: int, seed: int,
                 count: int, label_set: LabelSet) -> None:
        self.data = data
        self.count = count
        self.width, self.height = width, height
        self._cache_dir: Optional[str] = None
        self._cache = None
        if data == SYNTHETIC:
            from ..data.synthetic.generator import SceneGenerator
            self.seed = seed if split == 'train' else SYNTHETIC_VALIDATION_SEED
            self._generator = SceneGenerator(width=width, height=height, seed=self.seed)
            self._dataset = None
        else:
            from ..data.cityscapes import CityscapesDataset
            self._generator = None
            self._dataset = CityscapesDataset(data, split, label_set=label_set)
            self.count = len(self._dataset) if count <= 0 else min(count, len(self._dataset))

    def materialize(self, directory: str, workers: int, log=print) -> None:
        """Generate every synthetic frame once into memory-mapped ``.npy`` files."""
        if self._generator is None:
            return
        import multiprocessing
        os.makedirs(directory, exist_ok=True)
        stamp = os.path.join(directory, 'complete.txt')
        signature = f'{self.count} {self.width} {self.height} {self.seed}'
        if os.path.isfile(stamp) and open(stamp).read() == signature:
            log(f'using frame cache {directory}')
        else:
            started = time.monotonic()
            _open_cache(directory, self.count, self.height, self.width, 'w+')
            chunk = max(1, self.count // max(1, workers * 4))
            jobs = [(directory, self.count, self.width, self.height, self.seed, start,
                     min(start + chunk, self.count)) for start in range(0, self.count, chunk)]
            bar = ProgressBar(len(jobs), 'generating frames')
            if workers > 0:
                with multiprocessing.get_context('spawn').Pool(workers) as pool:
                    for done, _ in enumerate(pool.imap_unordered(_generate_into_cache, jobs)):
                        bar.update(done + 1)
            else:
                for done, job in enumerate(jobs):
                    _generate_into_cache(job)
                    bar.update(done + 1)
            bar.finish()
            from ..packages.atomic import atomic_write_text
            atomic_write_text(stamp, signature)
            log(f'generated {self.count} frames in {time.monotonic() - started:.0f} s')
        self._cache_dir = directory

    def __len__(self) -> int:
        return self.count

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_cache'] = None  # memory maps are reopened in each DataLoader worker
        return state

    def __getitem__(self, index: int):
        if self._cache_dir is not None:
            if self._cache is None:
                self._cache = _open_cache(self._cache_dir, self.count, self.height, self.width,
                                          'r')
            image, semantic, instance = self._cache
            return CachedFrame(np.asarray(image[index]), np.asarray(semantic[index]),
                               np.asarray(instance[index]).astype(np.int32))
        if self._generator is not None:
            return self._generator.generate(index)
        sample = self._dataset[index]
        if sample.semantic.shape == (self.height, self.width):
            return sample
        from ..images.preprocess import resize_labelled_frame
        return CachedFrame(*resize_labelled_frame(sample.image, sample.semantic,
                                                  sample.instance, self.height, self.width))


class TrainingSamples:
    """Augmented frames with Panoptic-DeepLab targets, as numpy arrays for a DataLoader.

    Sample ``i`` of epoch ``e`` is a pure function of (seed, e, i), so runs are reproducible
    whatever the number of workers.
    """

    def __init__(self, source: FrameSource, config: TrainConfig, label_set: LabelSet) -> None:
        from ..data.augment import AugmentConfig
        self.source = source
        self.config = config
        self.label_set = label_set
        self.epoch = 0
        self.augment_config = AugmentConfig(
            crop_height=config.crop_height or config.height,
            crop_width=config.crop_width or config.width,
            min_scale=config.min_scale, max_scale=config.max_scale,
            void_id=label_set.void_id, class_balanced_crop=config.class_balanced_crops)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
        from ..data.augment import augment
        from ..data.targets import panoptic_targets
        frame = self.source[index]
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        image, semantic, instance = augment(frame.image, frame.semantic, frame.instance, rng,
                                            self.augment_config)
        targets = panoptic_targets(semantic, instance, self.label_set,
                                   small_instance_area=self.config.small_instance_area,
                                   small_instance_weight=self.config.small_instance_weight)
        return {
            'image': np.ascontiguousarray(image.transpose(2, 0, 1)),
            'semantic': targets.semantic,
            'semantic_weights': targets.semantic_weights,
            'center': targets.center,
            'center_weights': targets.center_weights,
            'offset': targets.offset,
            'offset_weights': targets.offset_weights,
        }


def panoptic_deeplab_loss(outputs, batch, config: TrainConfig, void_id: int):
    """Weighted, hard-pixel-mined cross-entropy + weighted centre MSE + weighted offset L1.

    Args:
        outputs: Network dict: ``semantic`` (N,C,H,W), optionally ``center`` (N,1,H/r,W/r)
            and ``offset`` (N,2,H/r,W/r) at the network's instance stride r, upsampled
            bilinearly to the (N,H,W) targets here.
        batch: Targets as produced by ``TrainingSamples`` (tensors on the same device).

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
    valid = int((batch['semantic'] != void_id).sum())
    if valid == 0:
        semantic_loss = pixel_loss.sum() * 0.0
    elif config.hard_pixel_ratio < 1.0:
        keep = max(1, int(valid * config.hard_pixel_ratio))
        semantic_loss = torch.topk(pixel_loss, keep, sorted=False).values.mean()
    else:
        semantic_loss = pixel_loss.sum() / valid
    parts = {'semantic': float(semantic_loss.detach())}
    total = semantic_loss
    if 'center' in outputs:
        center_weights = batch['center_weights'].unsqueeze(1)
        center_error = (outputs['center'].float() - batch['center']) ** 2 * center_weights
        center_loss = center_error.sum() / center_weights.sum().clamp(min=1.0)
        offset_weights = batch['offset_weights'].unsqueeze(1)
        offset_error = (outputs['offset'].float() - batch['offset']).abs() * offset_weights
        offset_loss = offset_error.sum() / (2.0 * offset_weights.sum()).clamp(min=1.0)
        total = (total + config.center_loss_weight * center_loss
                 + config.offset_loss_weight * offset_loss)
        parts['center'] = float(center_loss.detach())
        parts['offset'] = float(offset_loss.detach())
    parts['total'] = float(total.detach())
    return total, parts


def resolve_device(device: str) -> str:
    import torch
    if device not in ('auto', 'cpu', 'cuda'):
        raise TrainingError(f'device {device!r} is not one of auto, cpu, cuda')
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise TrainingError('device cuda was asked for but torch sees no CUDA GPU')
    return device


def use_bfloat16_autocast(mixed_precision: str, device: str) -> bool:
    """Whether training runs the network under bfloat16 autocast (see ``TrainConfig``)."""
    import torch
    if mixed_precision not in ('auto', 'bf16', 'off'):
        raise TrainingError(f'mixed_precision {mixed_precision!r} is not one of auto, bf16, off')
    if mixed_precision != 'auto':
        return mixed_precision == 'bf16'
    if device == 'cuda':
        return True
    # Without native bfloat16 units the CPU emulates it and training gets slower, not faster.
    return bool(torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                and (torch.cpu._is_amx_tile_supported()
                     or torch.cpu._is_avx512_bf16_supported()))


def make_manifest(config: TrainConfig, label_set: LabelSet) -> ModelManifest:
    return ModelManifest(name=f'{config.model}_{config.task}', architecture=config.model,
                         task=config.task, input_height=config.height, input_width=config.width,
                         label_set=label_set, postprocess=PostprocessSettings())


@dataclass
class ValidationResult:
    """Metrics of the exported graph (post-processing included) on held-out frames."""

    miou: float
    pq: float
    pq_things: float
    pq_stuff: float
    per_class_iou: Dict[str, Optional[float]]
    frames: int


def validate(network, manifest: ModelManifest, source: Sequence, device: str,
             batch_size: int = 4) -> ValidationResult:
    """Run ``FusedSegmentationGraph`` (the export / torch-backend path) over ``source``.

    ``source`` is any sequence of frames with ``image`` (H,W,3) uint8, ``semantic`` (H,W) and
    ``instance`` (H,W) at the network size.
    """
    import torch

    from ..evaluation.metrics import ConfusionMatrix, PanopticQuality
    from ..export.graph import FusedSegmentationGraph
    from ..postprocess.components import (
        instances_from_connected_components,
        panoptic_from_semantic_and_instance,
    )
    labels = manifest.label_set
    confusion = ConfusionMatrix(labels.num_classes, ignore_index=labels.void_id)
    quality = PanopticQuality(labels, label_divisor=manifest.label_divisor)
    was_training = network.training
    network.eval()
    graph = FusedSegmentationGraph(network, manifest).to(device).eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(source), batch_size):
                frames = [source[i] for i in range(start, min(start + batch_size, len(source)))]
                images = np.stack([f.image.transpose(2, 0, 1) for f in frames])
                tensor = torch.from_numpy(images).to(device=device, dtype=torch.float32)
                outputs = dict(zip(manifest.output_names, graph(tensor)))
                semantic = outputs['semantic'].cpu().numpy()
                panoptic = outputs['panoptic'].cpu().numpy() if 'panoptic' in outputs else None
                for k, frame in enumerate(frames):
                    confusion.update(semantic[k], frame.semantic)
                    if panoptic is not None:
                        predicted = panoptic[k]
                    else:
                        instance = instances_from_connected_components(
                            semantic[k], labels.thing_ids)
                        predicted = panoptic_from_semantic_and_instance(
                            semantic[k], instance, manifest.label_divisor, labels.void_id)
                    gt = frame.semantic.astype(np.int32) * manifest.label_divisor + frame.instance
                    quality.update(predicted, gt)
    finally:
        network.train(was_training)
    result = quality.result()
    iou = confusion.iou()
    return ValidationResult(
        miou=float(confusion.mean_iou()), pq=float(result.pq), pq_things=float(result.pq_things),
        pq_stuff=float(result.pq_stuff),
        per_class_iou={name: (None if np.isnan(v) else round(float(v), 4))
                       for name, v in zip(labels.names, iou)},
        frames=len(source))


LOG_COLUMNS = ('epoch', 'iterations', 'lr', 'loss', 'semantic_loss', 'center_loss',
               'offset_loss', 'val_miou', 'val_pq', 'val_pq_things', 'val_pq_stuff', 'seconds')


def _write_log(path: str, rows: Sequence[Dict[str, Any]]) -> None:
    import io

    from ..packages.atomic import atomic_write_text
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, extrasaction='ignore',
                            lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def save_checkpoint(path: str, state: Dict[str, Any]) -> None:
    import torch

    from ..packages.atomic import atomic_open
    with atomic_open(path, 'wb') as stream:
        torch.save(state, stream)


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Load a checkpoint without unpickling code; errors name the file."""
    import torch
    if not os.path.isfile(path):
        raise TrainingError(f'checkpoint {path} does not exist')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises many types for corrupt files
        raise TrainingError(f'checkpoint {path} is corrupt or not a checkpoint: '
                            f'{type(error).__name__}: {error}') from None
    if not isinstance(state, dict) or not {'config', 'epoch', 'model'} <= set(state):
        raise TrainingError(f'checkpoint {path} lacks config/epoch/model entries')
    return state


def _load_initial_weights(network, source: str, partial: bool = False, log=print,
                          calibration_images=None) -> None:
    """Load a state dict (FP16 or FP32) from a ``.pt`` file or a model package directory
    (every tensor, or with ``partial`` the matching ones).

    A package that ships no weights file gives its ONNX graph's weights instead
    (``onnx_weights``; its BatchNorms are calibrated on ``calibration_images``, a float
    (N, 3, H, W) normalised batch, or a callable returning one).
    """
    from ..packages.loading import (
        load_matching_tensors,
        load_state_dict_into,
        read_state_dict,
        resolve_package_dir,
    )
    path = source
    if os.path.isdir(source):
        package_dir = resolve_package_dir(source)
        manifest = ModelManifest.load(package_dir)
        if not manifest.weights_file:
            _load_weights_from_package_onnx(network, package_dir, manifest, partial, log,
                                            calibration_images)
            return
        path = os.path.join(source, manifest.weights_file)
    state = {k: v.float() if v.is_floating_point() else v
             for k, v in read_state_dict(path).items()}
    if partial:
        counts = load_matching_tensors(network, state, path)
        log(f'loaded {counts["loaded"]} tensors from {path}; {counts["kept"]} keep their '
            f'initialisation, {counts["ignored"]} of the file matched nothing')
    else:
        load_state_dict_into(network, state, path)


def _load_weights_from_package_onnx(network, package_dir: str, manifest: ModelManifest,
                                    partial: bool, log, calibration_images) -> None:
    from ..packages.onnx_weights import describe, load_weights_from_onnx, OnnxWeightsError
    onnx_path = os.path.join(package_dir, manifest.onnx_file)
    if calibration_images is None:
        raise TrainingError(f'model package {package_dir} ships no weights file and no '
                            'images were given to recover them from its ONNX graph')
    images = calibration_images() if callable(calibration_images) else calibration_images
    try:
        result = load_weights_from_onnx(network, onnx_path, images)
    except OnnxWeightsError as error:
        raise TrainingError(str(error)) from None
    if result.fresh_tensors and not partial:
        raise TrainingError(
            f'{onnx_path} gives weights to only part of the network ({result.fresh_tensors} '
            'tensors would keep their initialisation): add --init-partial to start from it '
            'anyway (after a head change)')
    log(describe(result, onnx_path))


def _check_config(config: TrainConfig, resume: bool) -> None:
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
    if config.init_weights and not resume and not os.path.exists(config.init_weights):
        raise TrainingError(f'initial weights file {config.init_weights} does not exist')


def train(config: TrainConfig, out_dir: str, resume: bool = False,
          command_line: str = '', log=print) -> Tuple[str, ValidationResult]:
    """Train, validate, checkpoint and finally export a model package to ``out_dir/model``.

    Returns:
        (model package directory, last validation result).
    """
    import torch

    from ..export.onnx_export import export_model_package
    from ..models import build_model
    _check_config(config, resume)
    label_set = cityscapes()
    device = resolve_device(config.device)
    use_amp = use_bfloat16_autocast(config.mixed_precision, device)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % (2 ** 32))
    os.makedirs(os.path.join(out_dir, 'checkpoints'), exist_ok=True)
    checkpoint_path = os.path.join(out_dir, 'checkpoints', 'last.pt')
    log_path = os.path.join(out_dir, 'training_log.csv')

    network = build_model(config.model, num_classes=label_set.num_classes,
                          panoptic=config.task == 'panoptic').to(device)
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    network = network.to(memory_format=layout)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    start_epoch, history = 0, []
    if resume:
        state = load_checkpoint(checkpoint_path)
        saved = state['config']
        for name in ('model', 'task', 'height', 'width'):
            if saved.get(name) != getattr(config, name):
                raise TrainingError(f'cannot resume {checkpoint_path}: it was trained with '
                                    f'{name}={saved.get(name)!r}, not {getattr(config, name)!r}')
        network.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        start_epoch = int(state['epoch']) + 1
        history = list(state.get('history', []))
        log(f'resumed from {checkpoint_path} after epoch {start_epoch}')

    train_source = FrameSource(config.data, 'train', config.width, config.height, config.seed,
                               config.train_frames, label_set)
    val_source = FrameSource(config.data, 'val', config.width, config.height, config.seed,
                             config.val_frames, label_set)
    # Drawn or read once: validation runs every few epochs on the same held-out frames.
    val_frames = [val_source[index] for index in range(len(val_source))]
    if config.frame_cache:
        train_source.materialize(config.frame_cache, config.workers, log)
    samples = TrainingSamples(train_source, config, label_set)
    manifest = make_manifest(config, label_set)
    steps_per_epoch = max(1, len(samples) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    mean = torch.tensor([255.0 * m for m in manifest.mean], device=device).view(1, 3, 1, 1)
    scale = torch.tensor([1.0 / (255.0 * s) for s in manifest.std], device=device)
    scale = scale.view(1, 3, 1, 1)
    if config.init_weights and not resume:
        def calibration_images():
            count = min(len(samples), max(config.batch_size, 8))
            images = np.stack([samples[index]['image'] for index in range(count)])
            return (torch.from_numpy(images).to(device).float() - mean) * scale

        _load_initial_weights(network, config.init_weights, config.init_partial, log,
                              calibration_images)
        log(f'initialised weights from {config.init_weights}')
    log(f'training {config.model} ({config.task}) on {device}'
        f'{" with bfloat16 autocast" if use_amp else ""}: {len(samples)} frames/epoch, '
        f'{config.epochs} epochs, batch {config.batch_size}, {total_steps} iterations')

    validation = None
    validated_epochs = -1
    run_started = time.monotonic()
    epochs_done = start_epoch
    for epoch in range(start_epoch, config.epochs):
        samples.epoch = epoch
        loader = torch.utils.data.DataLoader(
            samples, batch_size=config.batch_size, shuffle=True, drop_last=True,
            num_workers=config.workers, pin_memory=device == 'cuda',
            generator=torch.Generator().manual_seed(config.seed * 1000 + epoch),
            persistent_workers=False)
        network.train()
        started = time.monotonic()
        bar = ProgressBar(steps_per_epoch, f'epoch {epoch + 1}/{config.epochs}')
        sums: Dict[str, float] = {}
        out_of_time = False
        steps_done = 0
        lr = optimizer.param_groups[0]['lr']
        for step, batch in enumerate(loader):
            iteration = epoch * steps_per_epoch + step
            if (config.max_minutes > 0
                    and time.monotonic() - run_started > 60.0 * config.max_minutes):
                out_of_time = True  # stop mid-epoch: validation and export still follow
                break
            progress = iteration / max(total_steps, 1)
            if config.max_minutes > 0:  # the poly decay follows whichever budget ends first
                elapsed = (time.monotonic() - run_started) / (60.0 * config.max_minutes)
                progress = max(progress, elapsed)
            lr = config.lr * max(0.0, 1.0 - progress) ** 0.9
            for group in optimizer.param_groups:
                group['lr'] = lr
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            images = ((batch['image'].float() - mean) * scale).contiguous(memory_format=layout)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
                outputs = network(images)
            loss, parts = panoptic_deeplab_loss(outputs, batch, config, label_set.void_id)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            steps_done += 1
            bar.update(step + 1, f'loss {sums["total"] / (step + 1):.4f}')
        if steps_done:
            bar.finish(f'loss {sums["total"] / steps_done:.4f}')
        if out_of_time and steps_done == 0:  # the budget ran out at an epoch boundary
            log(f'stopping after epoch {epoch}: --max-minutes {config.max_minutes} reached')
            break
        steps = max(1, steps_done)
        row: Dict[str, Any] = {
            'epoch': epoch + 1, 'iterations': epoch * steps_per_epoch + steps_done,
            'lr': f'{lr:.6g}',
            'loss': round(sums.get('total', 0.0) / steps, 5),
            'semantic_loss': round(sums.get('semantic', 0.0) / steps, 5),
            'center_loss': round(sums.get('center', 0.0) / steps, 6),
            'offset_loss': round(sums.get('offset', 0.0) / steps, 5),
            'seconds': round(time.monotonic() - started, 1)}
        out_of_time = out_of_time or (
            config.max_minutes > 0
            and time.monotonic() - run_started > 60.0 * config.max_minutes)
        last_epoch = epoch + 1 == config.epochs or out_of_time
        if (epoch + 1) % max(1, config.val_every) == 0 or last_epoch:
            validation = validate(network, manifest, val_frames, device)
            validated_epochs = epoch + 1
            row.update(val_miou=round(validation.miou, 4), val_pq=round(validation.pq, 4),
                       val_pq_things=round(validation.pq_things, 4),
                       val_pq_stuff=round(validation.pq_stuff, 4))
            log(f'epoch {epoch + 1}: loss {row["loss"]}  val mIoU {validation.miou:.4f}  '
                f'PQ {validation.pq:.4f} (things {validation.pq_things:.4f}, '
                f'stuff {validation.pq_stuff:.4f})')
        history.append(row)
        _write_log(log_path, history)
        save_checkpoint(checkpoint_path, {
            'config': asdict(config), 'epoch': epoch, 'model': network.state_dict(),
            'optimizer': optimizer.state_dict(), 'history': history})
        epochs_done = epoch + 1
        if out_of_time:
            log(f'stopping after epoch {epoch + 1}: --max-minutes {config.max_minutes} reached')
            break

    if validation is None or validated_epochs != epochs_done:
        validation = validate(network, manifest, val_frames, device)
    network = network.float().cpu().to(memory_format=torch.contiguous_format)
    manifest.info = {
        'trained_by': 'seg-perception train',
        'command': command_line,
        'data': config.data,
        'epochs': epochs_done,
        'train_frames_per_epoch': len(samples),
        'validation_frames': validation.frames,
        'validation_seed': SYNTHETIC_VALIDATION_SEED if config.data == SYNTHETIC else None,
        'val_miou': round(validation.miou, 4),
        'val_pq': round(validation.pq, 4),
        'val_pq_things': round(validation.pq_things, 4),
        'val_pq_stuff': round(validation.pq_stuff, 4),
        'config': asdict(config),
    }
    package_dir = os.path.join(out_dir, 'model')
    export_model_package(network, manifest, package_dir, fp16_weights=True)
    log(f'exported model package to {package_dir}')
    return package_dir, validation
