"""The training loop: one for every registered architecture, semantic or panoptic.

``train`` checks the configuration, builds the network, trains with AdamW and poly decay
(``loss.panoptic_deeplab_loss``), validates every few epochs (``validation.validate``),
writes the CSV log and a checkpoint after every epoch, and finally exports a model package
whose manifest records the run (``relative_command_line`` for its command). A loss or weights
that stop being finite end the run with ``TrainingError`` (the step and a hint); the last
checkpoint then keeps the last finite epoch and nothing is exported.

Under ``torchrun`` the same loop runs data-parallel (``distributed``): every process takes its
slice of each global batch and only rank 0 logs, validates and writes files.
"""

from __future__ import annotations

import csv
from dataclasses import asdict
import math
import os
import shlex
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..data.synthetic import SYNTHETIC_VALIDATION_SEED
from ..labels import cityscapes
from ..tools.progress import ProgressBar
from .checkpoints import (
    load_backbone_weights,
    load_initial_weights,
    resume_from_checkpoint,
    save_checkpoint,
)
from .config import check_config, SYNTHETIC, TrainConfig, TrainingError
from .device import resolve_device, use_bfloat16_autocast
from .distributed import convert_sync_batchnorm, Distributed, GlobalBatchSampler
from .frames import FrameSource, TrainingSamples
from .loss import panoptic_deeplab_loss
from .validation import make_manifest, validate, ValidationResult

#: Columns of ``training_log.csv`` (one row per epoch; validation columns where it ran).
LOG_COLUMNS = ('epoch', 'iterations', 'lr', 'loss', 'semantic_loss', 'center_loss',
               'offset_loss', 'val_miou', 'val_pq', 'val_pq_things', 'val_pq_stuff', 'seconds')


def _write_log(path: str, rows: Sequence[Dict[str, Any]]) -> None:
    """Write the whole log, one ``LOG_COLUMNS`` row per epoch, atomically to ``path``."""
    import io

    from ..packages.atomic import atomic_write_text
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, extrasaction='ignore',
                            lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _diverged(what: str, epoch: int, step: int, config: TrainConfig, use_amp: bool,
              checkpoint_path: str) -> TrainingError:
    """The one-line error that stops a diverging run: where, a hint, and what is kept."""
    hint = f'lower --lr (now {config.lr:g})'
    if use_amp:
        hint += ' or try --mixed-precision off'
    kept = f'{checkpoint_path} keeps epoch {epoch}' if epoch > 0 else 'no checkpoint was written'
    return TrainingError(f'training diverged: {what} at epoch {epoch + 1} step {step}; '
                         f'{hint}; no model was exported, {kept}')


def relative_path(value: str, directory: str = '') -> str:
    """An absolute path below ``directory`` (default: the current directory) made relative to
    it; anything else returned as given (a ``../..`` climb out of it is no more portable)."""
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    base = os.path.abspath(directory or os.getcwd())
    path = os.path.normpath(value)
    if os.path.commonpath([path, base]) != base:
        return value
    return os.path.relpath(path, base)


def relative_command_line(command_line: str, directory: str = '') -> str:
    """``command_line`` with every absolute path below ``directory`` written relative to it.

    A manifest keeps the command that trained it (``info.command``); absolute paths there
    would record the layout of the machine it ran on. ``directory`` is the current directory
    by default, the one the command was typed in, and not the run's output directory: a
    command line has one base for its relative paths, the shell's current directory, so
    written this way it runs again as recorded from the same place (for the zoo, the
    repository root), and paths the user typed relative stay as typed. Absolute paths outside
    ``directory`` are kept as given (``relative_path``). Both ``--option PATH`` and
    ``--option=PATH`` are rewritten; a line that is not valid shell quoting is returned
    unchanged.

    Example: in ``/home/me/ws``, ``--out /home/me/ws/runs/enet --init-weights=/data/x.pt``
    becomes ``--out runs/enet --init-weights=/data/x.pt``.
    """
    try:
        words = shlex.split(command_line)
    except ValueError:
        return command_line

    def relative(word: str) -> str:
        option, equals, value = word.partition('=') if word.startswith('-') else ('', '', word)
        return option + equals + relative_path(value, directory)

    return shlex.join(relative(word) for word in words)


def train(config: TrainConfig, out_dir: str, resume: bool = False,
          command_line: str = '', log=print,
          on_step: Optional[Callable[[int, Any], None]] = None) -> Tuple[str, ValidationResult]:
    """Train, validate, checkpoint and finally export a model package to ``out_dir/model``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) this process joins the job (``distributed``);
    ``config.batch_size`` is the global batch, and ranks other than 0 write nothing and
    stay silent. ``on_step(iteration, network)`` is called after every optimiser step with
    the plain (unwrapped) network.

    Returns:
        (model package directory, last validation result; the same on every rank).
    """
    check_config(config, resume)
    device = resolve_device(config.device)
    group = Distributed.from_environment(device)
    try:
        return _train(config, out_dir, resume, command_line,
                      log if group.is_main else (lambda *_: None),
                      on_step or (lambda *_: None), device, group)
    finally:
        group.shutdown()


def _train(config: TrainConfig, out_dir: str, resume: bool, command_line: str, log,
           on_step, device: str, group: Distributed) -> Tuple[str, ValidationResult]:
    import torch

    label_set = cityscapes()
    local_batch = group.per_process_batch(config.batch_size)
    use_amp = use_bfloat16_autocast(config.mixed_precision, device)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % (2 ** 32))
    checkpoint_path, log_path = _output_paths(out_dir, group)

    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    network = _build_network(config, label_set, device, group).to(memory_format=layout)
    if config.backbone_weights and not resume:  # before any data is drawn: errors come first
        load_backbone_weights(network, config.backbone_weights, log)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    start_epoch, history = 0, []
    if resume:
        start_epoch, history = resume_from_checkpoint(checkpoint_path, config, network,
                                                      optimizer)
        log(f'resumed from {checkpoint_path} after epoch {start_epoch}')

    train_source = FrameSource(config.data, 'train', config.width, config.height, config.seed,
                               config.train_frames, label_set)
    val_source = FrameSource(config.data, 'val', config.width, config.height, config.seed,
                             config.val_frames, label_set)
    # Drawn or read once: validation runs every few epochs on the same held-out frames.
    val_frames = [val_source[index] for index in range(len(val_source))]
    if config.frame_cache:
        _materialize(group, train_source, config, log)
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

        load_initial_weights(network, config.init_weights, config.init_partial, log,
                             calibration_images)
        log(f'initialised weights from {config.init_weights}')
    log(f'training {config.model} ({config.task}) on {device}'
        f'{" with bfloat16 autocast" if use_amp else ""}: {len(samples)} frames/epoch, '
        f'{config.epochs} epochs, batch {config.batch_size}, {total_steps} iterations'
        + (f'; {group.world_size} processes ({group.backend}) of batch {local_batch}'
           if group.enabled else ''))
    plain = network
    network = group.wrap(network, device)
    mean_counts = group.mean_counts if group.enabled else None

    validation = None
    validated_epochs = -1
    run_started = time.monotonic()
    epochs_done = start_epoch
    for epoch in range(start_epoch, config.epochs):
        samples.epoch = epoch
        sampler = GlobalBatchSampler(len(samples), config.batch_size,
                                     config.seed * 1000 + epoch, group.rank, group.world_size)
        loader = torch.utils.data.DataLoader(
            samples, batch_size=local_batch, sampler=sampler, drop_last=True,
            num_workers=config.workers, pin_memory=device == 'cuda',
            generator=torch.Generator().manual_seed(config.seed * 1000 + epoch),
            persistent_workers=False)
        network.train()
        started = time.monotonic()
        bar = ProgressBar(steps_per_epoch, f'epoch {epoch + 1}/{config.epochs}',
                          enabled=group.is_main)
        sums: Dict[str, float] = {}
        out_of_time = False
        steps_done = 0
        lr = optimizer.param_groups[0]['lr']
        for step, batch in enumerate(loader):
            iteration = epoch * steps_per_epoch + step
            progress = iteration / max(total_steps, 1)
            if config.max_minutes > 0:  # rank 0's clock: every rank decides alike
                elapsed = group.max_value(time.monotonic() - run_started)
                if elapsed > 60.0 * config.max_minutes:
                    out_of_time = True  # stop mid-epoch: validation and export still follow
                    break
                # the poly decay follows whichever budget ends first
                progress = max(progress, elapsed / (60.0 * config.max_minutes))
            lr = config.lr * max(0.0, 1.0 - progress) ** 0.9
            for param_group in optimizer.param_groups:
                param_group['lr'] = lr
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            images = ((batch['image'].float() - mean) * scale).contiguous(memory_format=layout)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
                outputs = network(images)
            loss, parts = panoptic_deeplab_loss(outputs, batch, config, label_set.void_id,
                                                mean_counts)
            parts = group.mean_parts(parts)  # the global batch's loss, alike on every rank
            if not math.isfinite(parts['total']):
                bar.finish(f'loss {parts["total"]}')
                raise _diverged(f'the loss is {parts["total"]}', epoch, step + 1, config,
                                use_amp, checkpoint_path)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            on_step(iteration, plain)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            steps_done += 1
            bar.update(step + 1, f'loss {sums["total"] / (step + 1):.4f}')
        if steps_done:
            bar.finish(f'loss {sums["total"] / steps_done:.4f}')
        if out_of_time and steps_done == 0:  # the budget ran out at an epoch boundary
            log(f'stopping after epoch {epoch}: --max-minutes {config.max_minutes} reached')
            break
        if not all(bool(torch.isfinite(value).all()) for value in plain.parameters()):
            raise _diverged('the weights hold NaN or infinity', epoch, steps_done, config,
                            use_amp, checkpoint_path)
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
            and group.max_value(time.monotonic() - run_started) > 60.0 * config.max_minutes)
        last_epoch = epoch + 1 == config.epochs or out_of_time
        if (epoch + 1) % max(1, config.val_every) == 0 or last_epoch:
            validation = _validate(group, plain, manifest, val_frames, device)
            validated_epochs = epoch + 1
            row.update(val_miou=round(validation.miou, 4), val_pq=round(validation.pq, 4),
                       val_pq_things=round(validation.pq_things, 4),
                       val_pq_stuff=round(validation.pq_stuff, 4))
            log(f'epoch {epoch + 1}: loss {row["loss"]}  val mIoU {validation.miou:.4f}  '
                f'PQ {validation.pq:.4f} (things {validation.pq_things:.4f}, '
                f'stuff {validation.pq_stuff:.4f})')
        history.append(row)
        # the plain module's weights: resumable on any number of processes
        _save_epoch(group, log_path, checkpoint_path, history, {
            'config': asdict(config), 'epoch': epoch, 'model': plain.state_dict(),
            'optimizer': optimizer.state_dict(), 'history': history})
        epochs_done = epoch + 1
        if out_of_time:
            log(f'stopping after epoch {epoch + 1}: --max-minutes {config.max_minutes} reached')
            break

    if validation is None or validated_epochs != epochs_done:
        validation = _validate(group, plain, manifest, val_frames, device)
    package_dir = os.path.join(out_dir, 'model')
    if group.is_main:
        manifest.info = _run_info(config, command_line, epochs_done, len(samples), validation)
        _export(plain, config, manifest, package_dir)
        log(f'exported model package to {package_dir}')
    return package_dir, validation


def _output_paths(out_dir: str, group: Distributed) -> Tuple[str, str]:
    """The checkpoint and log paths; rank 0 creates their directories (the others write
    nothing)."""
    if group.is_main:
        os.makedirs(os.path.join(out_dir, 'checkpoints'), exist_ok=True)
    return (os.path.join(out_dir, 'checkpoints', 'last.pt'),
            os.path.join(out_dir, 'training_log.csv'))


def _save_epoch(group: Distributed, log_path: str, checkpoint_path: str,
                history: Sequence[Dict[str, Any]], state: Dict[str, Any]) -> None:
    """Rank 0 writes the log and the checkpoint after an epoch; the other ranks nothing."""
    if group.is_main:
        _write_log(log_path, history)
        save_checkpoint(checkpoint_path, state)


def _build_network(config: TrainConfig, label_set, device: str, group: Distributed,
                   synced: bool = True):
    """The registered architecture on ``device``, with synced BatchNorm in a process group."""
    from ..models import build_model
    network = build_model(config.model, num_classes=label_set.num_classes,
                          panoptic=config.task == 'panoptic').to(device)
    if synced and group.enabled and config.sync_batchnorm:
        network = convert_sync_batchnorm(network, device)
    return network


def _export(network, config: TrainConfig, manifest, package_dir: str) -> None:
    """Export the trained weights in a plain network (float32 whatever torch's default
    dtype, CPU, plain BatchNorm)."""
    import torch

    from ..export.onnx_export import export_model_package
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        plain = _build_network(config, manifest.label_set, 'cpu', Distributed(), synced=False)
        plain.load_state_dict({name: value.float().cpu()
                               for name, value in network.state_dict().items()})
        plain = plain.to(memory_format=torch.contiguous_format)
        export_model_package(plain, manifest, package_dir, fp16_weights=True)
    finally:
        torch.set_default_dtype(default_dtype)


def _run_info(config: TrainConfig, command_line: str, epochs_done: int, frames_per_epoch: int,
              validation: ValidationResult) -> Dict[str, Any]:
    """The manifest's ``info``: how the package was trained and how it validated."""
    return {
        'trained_by': 'seg-perception train',
        'command': relative_command_line(command_line),
        'data': config.data,
        'epochs': epochs_done,
        'train_frames_per_epoch': frames_per_epoch,
        'validation_frames': validation.frames,
        'validation_seed': SYNTHETIC_VALIDATION_SEED if config.data == SYNTHETIC else None,
        'val_miou': round(validation.miou, 4),
        'val_pq': round(validation.pq, 4),
        'val_pq_things': round(validation.pq_things, 4),
        'val_pq_stuff': round(validation.pq_stuff, 4),
        'config': {name: relative_path(value) for name, value in asdict(config).items()},
    }


def _validate(group: Distributed, network, manifest, frames, device: str) -> ValidationResult:
    """Rank 0 validates the plain network (as one process would); every rank gets its result."""
    result = validate(network, manifest, frames, device) if group.is_main else None
    return group.broadcast(result)


def _materialize(group: Distributed, source: FrameSource, config: TrainConfig, log) -> None:
    """Rank 0 generates the frame cache; the other ranks then find it complete."""
    if group.is_main:
        source.materialize(config.frame_cache, config.workers, log)
    group.barrier()
    if not group.is_main:
        source.materialize(config.frame_cache, config.workers, log)
