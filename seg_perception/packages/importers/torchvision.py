"""torchvision segmentation checkpoints -> a model package (``seg-perception import torchvision``).

torchvision publishes FCN (ResNet-50/101), DeepLabv3 (ResNet-50/101, MobileNetV3-Large) and
LR-ASPP (MobileNetV3-Large) trained on a COCO subset with the 20 Pascal VOC classes plus
background (21 outputs). Their ``.pth`` files are plain state dicts; any checkpoint of the
same builders (``torchvision.models.segmentation.<arch>(num_classes=N)``, fine-tuned
elsewhere) imports the same way. torchvision itself is not needed: the networks are
``models.torchvision_compat`` (its names and shapes, loaded with a strict key check).

What the package does with them:

- file: ``torch.load(weights_only=True)``, so a file holding code is refused, not run; a bare
  state dict, or a dict holding one under ``model`` / ``state_dict`` (torchvision's
  reference training scripts save ``{'model': ...}``); a ``module.`` prefix
  (``nn.DataParallel``) is removed;
- ``aux_classifier.*`` (the auxiliary FCN head on layer3 / block 4 that only adds a training
  loss) is dropped knowingly and counted in the manifest's ``info``; a missing BatchNorm
  ``num_batches_tracked`` (checkpoints from torch < 0.4.1) is filled with 0, it plays no part
  in inference; every other tensor must be there with its shape;
- classes: the classifier's output channels; they must equal the label set's classes
  (``voc`` by default: background + the 20 VOC classes, torchvision's order);
- input: ImageNet mean/std on 0..1 RGB, as torchvision's transforms (the graph normalises);
- size: torchvision evaluates at a short side of 520 pixels, keeping the aspect ratio. A
  graph has one fixed size and the node resizes each frame to it, so the default is
  ``DEFAULT_INPUT_SIZE`` = 512x512: near 520 and a multiple of 16, which the MobileNetV3
  networks need (the ResNet ones need multiples of 8, so 520x520 works for them);
- provenance: ``info`` holds the architecture and the file's name and sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Any, Dict, List, Optional, Tuple

from ...labels import LabelSet
from . import first_line, key_names, KEYS_SHOWN, load_torch_file, ModelImportError, staged_package

#: (width, height) of the graph unless ``--input-size`` says otherwise.
DEFAULT_INPUT_SIZE = (512, 512)
DEFAULT_LABELS = 'voc'
#: torchvision's ImageNet normalisation, on 0..1 RGB like the manifest's.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Tensors of torchvision's checkpoints that inference does not use.
DROPPED_PREFIX = 'aux_classifier.'
#: First missing / unexpected keys named in an error.


def architecture_choices() -> Tuple[str, ...]:
    """torchvision's builder names this importer knows, in torchvision's order."""
    from ...models.torchvision_compat import TORCHVISION_ARCHITECTURES
    return tuple(TORCHVISION_ARCHITECTURES)


def get_architecture(arch: str):
    """The ``TorchvisionArchitecture`` of builder ``arch`` (``fcn_resnet50`` ...)."""
    from ...models.torchvision_compat import TORCHVISION_ARCHITECTURES
    if arch not in TORCHVISION_ARCHITECTURES:
        raise ModelImportError(
            f'--arch {arch!r} is not one of {", ".join(TORCHVISION_ARCHITECTURES)}')
    return TORCHVISION_ARCHITECTURES[arch]


def check_input_size(arch: str, width: int, height: int) -> None:
    """Raise ``ModelImportError`` unless both sides are positive multiples of the network's
    output stride (8 for the ResNet networks, 16 for the MobileNetV3 ones)."""
    divisor = get_architecture(arch).size_divisor
    if width > 0 and height > 0 and not width % divisor and not height % divisor:
        return

    def near(value: int) -> str:
        lower = max(divisor, value // divisor * divisor)
        return f'{lower}' if lower == value else f'{lower} or {lower + divisor}'

    raise ModelImportError(
        f'--input-size {width}x{height}: {arch} needs width and height that are positive '
        f'multiples of {divisor} (its output stride); width {near(width)}, height '
        f'{near(height)}')


def load_labels(labels: str) -> LabelSet:
    """The label set ``labels`` names (built-in name or YAML file), errors naming --labels."""
    from ...labels import load_label_set
    try:
        return load_label_set(labels)
    except ValueError as error:  # LabelSetError, or a malformed file
        raise ModelImportError(f'--labels: {first_line(error, with_type=False)}') from None


@dataclass
class TorchvisionCheckpoint:
    """A read checkpoint.

    Attributes:
        state_dict: Name -> tensor, ``module.`` prefix removed.
        sha256: Checksum of the file.
        unwrapped: The key the state dict was found under (``model``...), or None.
    """

    state_dict: Dict[str, Any]
    sha256: str
    unwrapped: Optional[str] = None


def read_checkpoint(path: str) -> TorchvisionCheckpoint:
    """Read a torchvision segmentation checkpoint (nothing is checked against a network yet).

    Raises:
        ModelImportError: missing, unreadable or truncated file, code in the pickle, or
            contents that are not a mapping of names to tensors.
    """
    import torch

    from ..loading import file_sha256
    if not os.path.isfile(path):
        raise ModelImportError(f'checkpoint {path} does not exist or is not a file')
    data = load_torch_file(path, "save the state dict alone, e.g. "
                           "torch.save(checkpoint['model'], 'weights.pth')")
    unwrapped = None
    if isinstance(data, dict):
        for key in ('model', 'state_dict'):
            if isinstance(data.get(key), dict):
                data, unwrapped = data[key], key
                break
    if not isinstance(data, dict) or not data or \
            not all(isinstance(value, torch.Tensor) for value in data.values()):
        raise ModelImportError(
            f'{path} does not hold a state dict of tensors (got {type(data).__name__}); give '
            "the file of model.state_dict() or torchvision's published .pth")
    state = dict(data)
    if all(isinstance(key, str) and key.startswith('module.') for key in state):
        state = {key[len('module.'):]: value for key, value in state.items()}
    return TorchvisionCheckpoint(state_dict=state, sha256=file_sha256(path),
                                 unwrapped=unwrapped)


@dataclass
class LoadedNetwork:
    """A torchvision checkpoint loaded into its ``torchvision_compat`` network.

    Attributes:
        network: The network in eval mode (``num_classes`` from the checkpoint).
        num_classes: Output channels of the classifier.
        dropped: Checkpoint keys left out (``aux_classifier.*``).
        filled: ``num_batches_tracked`` buffers the checkpoint lacked (set to 0).
    """

    network: Any
    num_classes: int
    dropped: List[str]
    filled: List[str]


def build_network(state: Dict[str, Any], arch: str, source: str) -> LoadedNetwork:
    """The registered network for torchvision's ``arch`` with ``state`` loaded strictly.

    Raises:
        ModelImportError: missing or unexpected keys (the first few named: a checkpoint of
            another architecture) or a tensor of the wrong shape.
    """
    import torch

    from ...models import build_model
    spec = get_architecture(arch)
    dropped = [key for key in state if key.startswith(DROPPED_PREFIX)]
    kept = {key: value for key, value in state.items() if not key.startswith(DROPPED_PREFIX)}
    classifier = kept.get(spec.classifier_key)
    num_classes = int(classifier.shape[0]) if classifier is not None and classifier.dim() else 21
    network = build_model(spec.registry_name, num_classes=num_classes, panoptic=False)
    expected = network.state_dict()
    filled = [key for key in expected
              if key not in kept and key.endswith('.num_batches_tracked')]
    missing = [key for key in expected if key not in kept and key not in filled]
    unexpected = [key for key in kept if key not in expected]
    if missing or unexpected:
        raise ModelImportError(
            f'{source} is not a torchvision {arch} state dict: {len(missing)} missing keys '
            f'{key_names(missing)}, {len(unexpected)} unexpected keys {key_names(unexpected)} '
            '(another --arch?)')
    wrong = [f'{key} {tuple(kept[key].shape)} (expected {tuple(value.shape)})'
             for key, value in expected.items()
             if key in kept and tuple(kept[key].shape) != tuple(value.shape)]
    if wrong:
        raise ModelImportError(f'{source}: {len(wrong)} tensors of {arch} have the wrong shape: '
                               f'{", ".join(wrong[:KEYS_SHOWN])} (another --arch?)')
    kept.update({key: torch.zeros_like(expected[key]) for key in filled})
    network.load_state_dict(kept, strict=True)
    return LoadedNetwork(network.eval(), num_classes, dropped, filled)


def import_torchvision(checkpoint_path: str, arch: str, out_dir: str,
                       input_size: Optional[Tuple[int, int]] = None,
                       labels: str = DEFAULT_LABELS, name: Optional[str] = None):
    """Write the model package ``out_dir`` from a torchvision segmentation checkpoint.

    Args:
        checkpoint_path: The ``.pth`` file (``deeplabv3_resnet50_coco-cd0a2569.pth``...).
        arch: torchvision's builder name (``architecture_choices()``).
        out_dir: Package directory to create (must not exist or be empty).
        input_size: (width, height) of the graph; default ``DEFAULT_INPUT_SIZE``.
        labels: Built-in label set name or YAML file; its class count must equal the
            checkpoint's classifier outputs.
        name: Package name; default ``torchvision_<arch>``.

    Returns:
        The written ``ModelManifest``.

    Raises:
        ModelImportError: one line naming what to change; nothing is written.
    """
    from ...export.graph import ExportError
    from ...export.onnx_export import export_model_package
    from ...manifest import ModelManifest
    spec = get_architecture(arch)
    width, height = input_size or DEFAULT_INPUT_SIZE
    check_input_size(arch, width, height)
    label_set = load_labels(labels)
    with staged_package(out_dir) as scratch:  # refuses a non-empty --out before reading
        checkpoint = read_checkpoint(checkpoint_path)
        loaded = build_network(checkpoint.state_dict, arch, checkpoint_path)
        if label_set.num_classes != loaded.num_classes:
            raise ModelImportError(
                f"--labels {labels} has {label_set.num_classes} classes but the checkpoint's "
                f'classifier ({spec.classifier_key}) has {loaded.num_classes} outputs; give '
                f'--labels a label set file with {loaded.num_classes} classes')
        manifest = ModelManifest(
            name=name or spec.registry_name, architecture=spec.registry_name, task='semantic',
            input_height=height, input_width=width, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            label_set=label_set, info=_provenance(arch, checkpoint_path, checkpoint, loaded,
                                                  (width, height)))
        try:
            return export_model_package(loaded.network, manifest, scratch)
        except ExportError as error:
            raise ModelImportError(f'export failed: {first_line(error)}') from None


def _provenance(arch: str, path: str, checkpoint: TorchvisionCheckpoint, loaded: LoadedNetwork,
                size: Tuple[int, int]) -> Dict[str, Any]:
    """The manifest's ``info``: where the weights came from and what was left out."""
    info: Dict[str, Any] = {
        'source': 'torchvision segmentation checkpoint',
        'source_arch': arch,
        'source_file': os.path.basename(path),
        'source_sha256': checkpoint.sha256,
        'dropped': (f'{len(loaded.dropped)} {DROPPED_PREFIX}* tensors (training-only '
                    'auxiliary head)') if loaded.dropped else 'nothing',
        'normalisation': "ImageNet mean/std on 0..1 RGB (torchvision's transforms)",
        'evaluation_size': ('torchvision evaluates at a short side of 520; this graph runs '
                            f'at {size[0]}x{size[1]}'),
    }
    if checkpoint.unwrapped:
        info['source_entry'] = checkpoint.unwrapped
    if loaded.filled:
        info['filled'] = f'{len(loaded.filled)} num_batches_tracked buffers set to 0'
    return info
