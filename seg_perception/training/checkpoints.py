"""Checkpoints of a run and the weights a run starts from.

Checkpoints hold only tensors and plain numbers, so they load with ``weights_only=True``.
Initial weights come from a ``.pt`` state dict, a checkpoint or a model package directory
(its weights file, or the weights of its ONNX graph); backbone weights from torchvision's
ImageNet classification checkpoints (``models.pretrained``).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

from ..manifest import ModelManifest
from .config import TrainConfig, TrainingError


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
    if not isinstance(state['config'], dict) or not isinstance(state['model'], dict) \
            or isinstance(state['epoch'], bool) or not isinstance(state['epoch'], int):
        raise TrainingError(f'checkpoint {path} is malformed: config and model must be '
                            'mappings and epoch an integer')
    return state


def resume_from_checkpoint(path: str, config: TrainConfig, network,
                           optimizer) -> Tuple[int, List[Dict[str, Any]]]:
    """Load the checkpoint ``path`` of a run into ``network`` and ``optimizer``.

    Returns:
        (the epoch to continue with, the log rows of the epochs done).

    Raises:
        TrainingError: The checkpoint is missing or corrupt, was trained with another
            model, task or size, holds NaN or infinite weights, or has no optimizer state
            (then ``--init-weights`` starts from its weights with a fresh optimizer).
    """
    from ..packages.loading import check_finite_state, PackageError
    state = load_checkpoint(path)
    saved = state['config']
    for name in ('model', 'task', 'height', 'width'):
        if saved.get(name) != getattr(config, name):
            raise TrainingError(f'cannot resume {path}: it was trained with '
                                f'{name}={saved.get(name)!r}, not {getattr(config, name)!r}')
    if not isinstance(state.get('optimizer'), dict):
        raise TrainingError(
            f'cannot resume {path}: it holds no optimizer state, so the run cannot continue '
            f'where it stopped; start a new run from its weights with --init-weights {path}')
    try:
        check_finite_state(state['model'], path)
        network.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
    except PackageError as error:
        raise TrainingError(f'cannot resume: {error}') from None
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise TrainingError(f'cannot resume {path}: its weights or optimizer state do not fit '
                            f'this network: {" ".join(str(error).split())[:300]}') from None
    history = state.get('history', [])
    return state['epoch'] + 1, list(history) if isinstance(history, list) else []


def load_initial_weights(network, source: str, partial: bool = False, log=print,
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


def load_backbone_weights(network, path: str, log=print) -> None:
    """Load torchvision's ImageNet weights from ``path`` into ``network.encoder`` and log the
    report (tensors loaded, encoder tensors not loaded, checkpoint keys dropped).

    Raises:
        TrainingError: The network has no such encoder, the file is unreadable, or it is
            another architecture's (nothing is loaded then).
    """
    from ..models.pretrained import (
        load_torchvision_backbone,
        PretrainedWeightsError,
        torchvision_arch,
    )
    from ..packages.loading import PackageError, read_state_dict
    encoder = getattr(network, 'encoder', None)
    try:
        torchvision_arch(encoder)
    except PretrainedWeightsError:
        raise TrainingError(
            f'{type(network).__name__} has no ResNet / MobileNetV3 encoder to load backbone '
            'weights into (the deeplabv3*, fcn_* and pspnet_* models have one)') from None
    try:
        report = load_torchvision_backbone(encoder, read_state_dict(path), path)
    except (PackageError, PretrainedWeightsError) as error:
        raise TrainingError(' '.join(str(error).split())) from None
    for line in report.lines():
        log(line)


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
