"""davidtvs/PyTorch-ENet checkpoints -> a model package (``seg-perception import pytorch-enet``).

PyTorch-ENet (MIT licence) publishes ENet trained on Cityscapes (59.5 mIoU, validation,
1024x512) and CamVid (52.1 mIoU, test, 480x360). Its checkpoints are ``torch.save`` of
``{'epoch', 'miou', 'state_dict', 'optimizer'}``; ``miou`` is a numpy float64. They are read
with ``torch.load(weights_only=True)``, allowing numpy's scalar and dtype only, so a file
that holds code is refused, not run.

What the package does with them:

- network: ``models.pytorch_enet`` (their layer names and shapes, strict load; max-unpooling
  by mask, exact and TensorRT-parseable);
- input: RGB / 255 with no mean subtraction, as their ``transforms.ToTensor()``; in the
  manifest ``mean = (0, 0, 0)``, ``std = (1, 1, 1)`` (the graph divides by 255);
- classes: their models have an ``unlabeled`` output besides the real classes (Cityscapes:
  channel 0, then the 19 train ids in order; CamVid: the 11 classes, then ``unlabeled`` at
  11). **That channel is dropped from the logits in the graph**, so the argmax, the
  confidence softmax and everything the node publishes are over the real classes only; the
  node never publishes it as a class, and no pixel becomes void from the model. Why drop it
  rather than turn it into void: PyTorch-ENet trains with ``ignore_unlabeled`` (both
  published models), i.e. class weight 0 for ``unlabeled``, so its logit is only ever pushed
  down and carries no learned "unlabeled" evidence; and its evaluation zeroes that class's
  confusion-matrix row and column. Dropping the channel in the network keeps the ONNX,
  torch and TensorRT backends identical with the shared post-processing unchanged. Their
  ground-truth ``unlabeled`` is this project's void (255) (labels ``cityscapes`` /
  ``camvid``);
- provenance: the manifest's ``info`` holds the checkpoint's sha256, epoch and mIoU.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import os
from typing import Any, Dict, List, Optional, Tuple

from ...labels import LabelSet
from . import export_staged, key_names, KEYS_SHOWN, load_torch_file, ModelImportError

ARCHITECTURE = 'pytorch_enet'
SIZE_DIVISOR = 8
#: First missing / unexpected keys named in an error.


@dataclass(frozen=True)
class EnetDataset:
    """A dataset PyTorch-ENet publishes a model for.

    Attributes:
        name: ``cityscapes`` or ``camvid`` (also the label set's name).
        output_channels: The checkpoint's class count, ``unlabeled`` included.
        unlabeled_channel: Index of ``unlabeled`` in their logits.
        input_size: (width, height) they trained and evaluated at (the default size).
        reported: Their published result, for the manifest.
    """

    name: str
    output_channels: int
    unlabeled_channel: int
    input_size: Tuple[int, int]
    reported: str

    @property
    def class_channels(self) -> List[int]:
        """Their logit channel of each of our train ids 0..C-1."""
        return [c for c in range(self.output_channels) if c != self.unlabeled_channel]

    def label_set(self) -> LabelSet:
        from ...labels import named_label_set
        return named_label_set(self.name)


def _datasets() -> Dict[str, EnetDataset]:
    from ...label_tables import CAMVID_UNLABELLED_INDEX
    return {
        'cityscapes': EnetDataset('cityscapes', 20, 0, (1024, 512),
                                  '59.5 mIoU on Cityscapes val at 1024x512'),
        'camvid': EnetDataset('camvid', 12, CAMVID_UNLABELLED_INDEX, (480, 360),
                              '52.1 mIoU on CamVid test at 480x360'),
    }


DATASET_CHOICES = ('cityscapes', 'camvid')


def get_dataset(name: str) -> EnetDataset:
    datasets = _datasets()
    if name not in datasets:
        raise ModelImportError(f'--dataset {name!r} is not one of {", ".join(DATASET_CHOICES)}')
    return datasets[name]


@dataclass
class EnetCheckpoint:
    """A read PyTorch-ENet checkpoint.

    Attributes:
        state_dict: Their ``ENet`` state dict (tensor per key).
        epoch: Their ``epoch`` entry (None when absent).
        miou: Their ``miou`` entry as a float (None when absent).
        sha256: Checksum of the file.
    """

    state_dict: Dict[str, Any]
    epoch: Optional[int]
    miou: Optional[float]
    sha256: str


def _numpy_safe_globals() -> list:
    """What ``weights_only`` must allow for PyTorch-ENet's numpy ``miou``: numpy's scalar
    constructor (under its numpy 1.x and 2.x module names) and the float dtypes."""
    import numpy as np
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar
    allowed: list = [np.dtype, (scalar, 'numpy.core.multiarray.scalar'),
                     (scalar, 'numpy._core.multiarray.scalar')]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in ('Float64DType', 'Float32DType',
                                                 'Int64DType', 'Int32DType')]
    return allowed


def read_checkpoint(path: str) -> EnetCheckpoint:
    """Read a checkpoint and check its form: a dict whose ``state_dict`` maps names to
    tensors (the names and shapes are ``build_network``'s to check).

    Raises:
        ModelImportError: missing, unreadable or truncated file, code in the pickle, not a
            dict, no ``state_dict``, or a ``state_dict`` that is not a mapping of tensors.
    """
    import torch
    if not os.path.isfile(path):
        raise ModelImportError(f'checkpoint {path} does not exist or is not a file')
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    data = load_torch_file(
        path, "give a checkpoint of state dicts as PyTorch-ENet saves it ({'epoch', 'miou', "
        "'state_dict', 'optimizer'})", _numpy_safe_globals())
    if not isinstance(data, dict):
        raise ModelImportError(
            f'{path} holds a {type(data).__name__}, not a PyTorch-ENet checkpoint dict '
            "{'epoch', 'miou', 'state_dict', 'optimizer'}")
    if 'state_dict' not in data:
        keys = ', '.join(repr(k) for k in list(data)[:KEYS_SHOWN]) or 'none'
        bare = 'transposed_conv.weight' in data
        raise ModelImportError(
            f"{path} is a dict without 'state_dict' (keys: {keys}); PyTorch-ENet checkpoints "
            "are {'epoch', 'miou', 'state_dict', 'optimizer'}"
            + ("; this looks like a bare state dict: save {'state_dict': it}" if bare else ''))
    state = data['state_dict']
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ModelImportError(f"{path}: 'state_dict' is not a mapping of names to tensors")
    epoch, miou = data.get('epoch'), data.get('miou')
    return EnetCheckpoint(
        state_dict=dict(state), sha256=digest.hexdigest(),
        epoch=int(epoch) if isinstance(epoch, (int, float)) else None,
        miou=float(miou) if _is_number(miou) else None)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bytes, bool))


def build_network(state: Dict[str, Any], dataset: EnetDataset, source: str):
    """The ``pytorch_enet`` network for ``dataset`` with ``state`` loaded strictly (eval).

    Raises:
        ModelImportError: missing or unexpected keys (the first few are named), a class
            count that is not the dataset's, or another shape mismatch.
    """
    from ...models import build_model
    network = build_model(ARCHITECTURE, **network_kwargs(dataset))
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        hint = ''
        if all(k.startswith('module.') for k in state):
            hint = " (keys start with 'module.': saved from nn.DataParallel; save model.module)"
        raise ModelImportError(
            f"{source} is not PyTorch-ENet's ENet state dict: {len(missing)} missing keys "
            f'{key_names(missing)}, {len(unexpected)} unexpected keys '
            f'{key_names(unexpected)}{hint}')
    classes = tuple(state['transposed_conv.weight'].shape)
    if len(classes) != 4 or classes[1] != dataset.output_channels:
        others = [d.name for d in _datasets().values()
                  if len(classes) == 4 and d.output_channels == classes[1]]
        guess = f'; it looks like --dataset {others[0]}' if others else ''
        raise ModelImportError(
            f'{source} has {classes[1] if len(classes) == 4 else "?"} output classes '
            f'(transposed_conv.weight {classes}) but --dataset {dataset.name} needs '
            f'{dataset.output_channels} ({dataset.output_channels - 1} classes + unlabeled)'
            f'{guess}')
    wrong = [f'{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})'
             for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise ModelImportError(f'{source}: {len(wrong)} tensors have the wrong shape: '
                               f'{", ".join(wrong[:KEYS_SHOWN])}')
    network.load_state_dict(state, strict=True)
    return network.eval()


def network_kwargs(dataset: EnetDataset) -> Dict[str, Any]:
    """``build_model`` arguments (also the manifest's ``architecture_kwargs`` without
    ``num_classes`` / ``panoptic``) of the network for ``dataset``'s checkpoints."""
    return {'num_classes': dataset.output_channels - 1, 'panoptic': False,
            'output_channels': dataset.output_channels,
            'class_channels': dataset.class_channels}


def check_input_size(width: int, height: int) -> None:
    """Raise ``ModelImportError`` unless width and height are positive multiples of 8
    (ENet's initial block and two max pools each halve the size; the pools need even
    sizes for exact unpooling)."""
    if width <= 0 or height <= 0 or width % SIZE_DIVISOR or height % SIZE_DIVISOR:
        raise ModelImportError(
            f'--input-size {width}x{height}: width and height must be positive multiples of '
            f'{SIZE_DIVISOR} (ENet halves the size three times and its max pools need even '
            'sizes), e.g. 1024x512 or 480x360')


def import_pytorch_enet(checkpoint_path: str, dataset: str, out_dir: str,
                        input_size: Optional[Tuple[int, int]] = None,
                        name: Optional[str] = None):
    """Write the model package ``out_dir`` from a PyTorch-ENet checkpoint.

    Args:
        checkpoint_path: Their ``torch.save`` file (``save/ENet_Cityscapes/ENet``...).
        dataset: ``cityscapes`` or ``camvid``: which of their models it is.
        out_dir: Package directory to create (must not exist or be empty).
        input_size: (width, height) of the graph; default the dataset's (1024x512 /
            480x360). Multiples of 8.
        name: Package name; default ``pytorch_enet_<dataset>``.

    Returns:
        The written ``ModelManifest``.

    Raises:
        ModelImportError: one line naming what to change; nothing is written.
    """
    from ...manifest import ModelManifest
    spec = get_dataset(dataset)
    width, height = input_size or spec.input_size
    check_input_size(width, height)
    checkpoint = read_checkpoint(checkpoint_path)
    network = build_network(checkpoint.state_dict, spec, checkpoint_path)
    kwargs = network_kwargs(spec)
    manifest = ModelManifest(
        name=name or f'{ARCHITECTURE}_{spec.name}', architecture=ARCHITECTURE,
        task='semantic', input_height=height, input_width=width,
        architecture_kwargs={k: v for k, v in kwargs.items()
                             if k not in ('num_classes', 'panoptic')},
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), label_set=spec.label_set(),
        info={
            'source': 'davidtvs/PyTorch-ENet checkpoint',
            'source_file': os.path.basename(checkpoint_path),
            'source_sha256': checkpoint.sha256,
            'source_epoch': checkpoint.epoch,
            'source_miou': checkpoint.miou,
            'source_dataset': spec.name,
            'source_reported': spec.reported,
            'unlabeled': f'logit channel {spec.unlabeled_channel} (unlabeled) dropped in the '
                         'graph: argmax over the real classes',
            'normalisation': 'RGB / 255, no mean (their transforms.ToTensor())',
        })
    return export_staged(network, manifest, out_dir)
