"""Load a model package: manifest, checksum-verified ONNX file, torch network from weights.

Importable without torch (a Jetson with only onnxruntime or TensorRT uses
``load_model_package``); torch is imported inside ``load_torch_network`` only.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Tuple

from ..manifest import MANIFEST_FILE, ManifestError, ModelManifest


class PackageError(ManifestError, RuntimeError):
    """A model package file is missing, corrupt or does not match the manifest.

    A ``ManifestError`` (ValueError) for callers that validate packages, and a RuntimeError
    for backends that treat unloadable weights as a runtime failure.
    """


def file_sha256(path: str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_package_dir(path: str) -> str:
    """A package directory from the directory itself or a path to its ``manifest.yaml``."""
    path = os.path.expanduser(str(path))
    if os.path.isfile(path) and os.path.basename(path) == MANIFEST_FILE:
        return os.path.dirname(os.path.abspath(path))
    return path


def load_model_package(path: str) -> Tuple[ModelManifest, str]:
    """Read a package's manifest and verify its ONNX file.

    Args:
        path: Package directory (or its ``manifest.yaml``).

    Returns:
        ``(manifest, package_dir)``.

    Raises:
        ManifestError: no/corrupt manifest (from ``ModelManifest.load``).
        PackageError: the ONNX file is missing, the manifest has no checksum, the file's
            SHA-256 differs from the manifest's, or (checked where the ``onnx`` package is
            installed, ``graph_check``) its weights hold NaN or infinity.
    """
    package_dir = resolve_package_dir(path)
    manifest = ModelManifest.load(package_dir)
    onnx_path = manifest.onnx_path(package_dir)
    if not os.path.isfile(onnx_path):
        raise PackageError(f'model package {package_dir}: {manifest.onnx_file} is missing')
    if not manifest.onnx_sha256:
        raise PackageError(
            f'model package {package_dir}: manifest has no onnx_sha256, so {manifest.onnx_file} '
            'cannot be verified; re-export the package with seg-perception export')
    actual = file_sha256(onnx_path)
    if actual != manifest.onnx_sha256:
        raise PackageError(
            f'{onnx_path}: {manifest.onnx_file} is corrupt or was modified: sha256 {actual} != '
            f'manifest {manifest.onnx_sha256}')
    from .graph_check import check_graph_file
    check_graph_file(onnx_path, manifest)
    return manifest, package_dir


def read_state_dict(path: str) -> Dict[str, Any]:
    """Load a ``.pt`` state dict safely (``weights_only=True``) onto the CPU.

    Accepts a bare state dict or a training checkpoint holding one under ``state_dict`` or
    ``model``.

    Raises:
        PackageError: missing, unreadable or not a mapping of names to tensors.
    """
    import torch
    if not os.path.isfile(path):
        raise PackageError(f'weights file {path} does not exist')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle/zip errors come in many types
        raise PackageError(
            f'weights file {path} is corrupt or not a torch state dict: '
            f'{type(error).__name__}: {error}') from None
    if isinstance(data, dict):
        for key in ('state_dict', 'model'):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not data or \
            not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise PackageError(f'weights file {path} does not hold a state dict of tensors')
    return data


def nonfinite_tensors(state: Dict[str, Any]) -> List[str]:
    """Names of the floating-point tensors of ``state`` holding a NaN or an infinity."""
    import torch
    return [name for name, value in state.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point()
            and not bool(torch.isfinite(value).all())]


def check_finite_state(state: Dict[str, Any], source: str) -> None:
    """Refuse weights holding NaN or infinity (what a diverged training run leaves).

    Raises:
        PackageError: One line naming ``source``, how many tensors are affected and the
            first of them.
    """
    bad = nonfinite_tensors(state)
    if bad:
        raise PackageError(
            f'weights {source} are not finite: {len(bad)} of {len(state)} tensors hold NaN or '
            f'infinity (first {bad[0]}); the training that made them diverged')


def load_state_dict_into(network, state: Dict[str, Any], source: str) -> None:
    """``network.load_state_dict(state, strict=True)`` with an error naming what differs.

    Raises:
        PackageError: The tensors do not fit the network, or hold NaN or infinity.
    """
    check_finite_state(state, source)
    own = network.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}'
                  for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        def _some(items):
            return ', '.join(items[:5]) + (f' (+{len(items) - 5} more)' if len(items) > 5 else '')
        details = []
        if missing:
            details.append(f'missing {len(missing)}: {_some(missing)}')
        if unexpected:
            details.append(f'unexpected {len(unexpected)}: {_some(unexpected)}')
        if mismatched:
            details.append(f'shape mismatch {len(mismatched)}: {_some(mismatched)}')
        raise PackageError(
            f'weights {source} do not fit the network ({"; ".join(details)}); wrong '
            'architecture, class count or panoptic head?')
    network.load_state_dict(state, strict=True)


def load_matching_tensors(network, state: Dict[str, Any], source: str) -> Dict[str, int]:
    """Copy every tensor of ``state`` whose name and shape match one of ``network``'s.

    For fine-tuning across a head change (the rest of the network starts where ``state``
    left it, the changed layers at their fresh initialisation).

    Returns:
        Counts: ``loaded``, ``kept`` (network tensors left as they were), ``ignored``
        (tensors of ``state`` with no match).

    Raises:
        PackageError: Fewer than half of the network's tensors match: the wrong
            architecture, not a head change; or the tensors hold NaN or infinity.
    """
    check_finite_state(state, source)
    own = network.state_dict()
    matching = {k: v for k, v in state.items()
                if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if 2 * len(matching) < len(own):
        raise PackageError(
            f"weights {source} match only {len(matching)} of the network's {len(own)} "
            'tensors by name and shape: another architecture, not a changed head')
    network.load_state_dict(matching, strict=False)
    return {'loaded': len(matching), 'kept': len(own) - len(matching),
            'ignored': len(state) - len(matching)}


def load_torch_network(package_dir: str, manifest: ModelManifest, device='cpu'):
    """Build the package's registered architecture and load its ``weights.pt``, or, for a
    package that ships only ONNX, the weights of its graph (``onnx_weights``, BatchNorm
    folding undone for inference; needs the ``onnx`` package).

    Args:
        package_dir: Package directory.
        manifest: Its manifest (``architecture``, ``architecture_kwargs``, label set, task).
        device: ``'cpu'``, ``'cuda'`` or a ``torch.device``.

    Returns:
        The network (FP32, eval mode) on ``device``.

    Raises:
        PackageError: ``architecture_kwargs`` the architecture's builder does not take, a
            missing/corrupt/mismatched weights file (a classifier for another
            number of classes than the label set's is named), or no weights file and an
            ONNX graph that does not hold all the network's weights.
        UnknownModelError: the manifest names an architecture that is not registered.
    """
    from ..models import build_model
    try:
        network = build_model(manifest.architecture,
                              num_classes=manifest.label_set.num_classes,
                              panoptic=manifest.is_panoptic, **dict(manifest.architecture_kwargs))
    except (TypeError, ValueError) as error:
        raise PackageError(
            f'model package {package_dir}: architecture_kwargs '
            f'{dict(manifest.architecture_kwargs)!r} do not build {manifest.architecture}: '
            f'{error}') from None
    if not manifest.weights_file:
        _load_weights_from_graph(network, package_dir, manifest)
        return network.to(device).eval()
    path = os.path.join(package_dir, manifest.weights_file)
    state = read_state_dict(path)
    _check_class_count(network, state, manifest, path)
    load_state_dict_into(network, state, path)
    return network.to(device).eval()


def _check_class_count(network, state: Dict[str, Any], manifest: ModelManifest,
                       path: str) -> None:
    """Name a label set whose class count differs from the weights' classifier: the first
    tensor whose leading dimension is the label set's class count in the network and
    another number in the file."""
    classes = manifest.label_set.num_classes
    for name, own in network.state_dict().items():
        theirs = state.get(name)
        if theirs is not None and own.dim() and theirs.dim() == own.dim() \
                and own.shape[0] == classes and theirs.shape[0] != classes \
                and tuple(own.shape[1:]) == tuple(theirs.shape[1:]):
            raise PackageError(
                f"{path}: the weights' classifier {name} has {theirs.shape[0]} classes but the "
                f"manifest's label set {manifest.label_set.name!r} has {classes}; it is not "
                'the label set these weights were trained with')


def _load_weights_from_graph(network, package_dir: str, manifest: ModelManifest) -> None:
    try:
        from .onnx_weights import load_weights_from_onnx, OnnxWeightsError
    except ImportError as error:  # the onnx package
        raise PackageError(f'model package {package_dir} has no torch weights file and reading '
                           f'them from its ONNX graph needs {error.name}') from None
    onnx_path = os.path.join(package_dir, manifest.onnx_file)
    try:
        result = load_weights_from_onnx(network, onnx_path)
    except OnnxWeightsError as error:
        raise PackageError(f'model package {package_dir} has no torch weights file and '
                           f'{error}') from None
    if result.fresh_tensors:
        raise PackageError(
            f'model package {package_dir} has no torch weights file and its ONNX graph holds '
            f'only part of them ({result.fresh_tensors} tensors missing)')
