"""Write frames in the Cityscapes folder layout, readable unchanged by Cityscapes tooling.

For ``root``, ``split``, ``city`` and ``frame_name = '<seq>_<frame>'`` it writes::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png        8-bit RGB image
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png          8-bit label ids
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png       16-bit ids
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png     8-bit train ids
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_color.png             RGBA label colours

instanceIds follow Cityscapes: ``label_id * 1000 + k`` on thing instances, with ``k``
counting each class's instances from 0, and the plain label id elsewhere. labelTrainIds is
what cityscapesScripts' ``createTrainIdLabelImgs`` would produce (void = 255), so loaders
that expect it (mmsegmentation, detectron2) work too. Every file is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import re
from typing import Dict

import cv2
import numpy as np

from ..labels import cityscapes, train_id_to_cityscapes_label_lut, VOID_ID
from ..packages.atomic import atomic_write_bytes

SPLITS = ('train', 'val', 'test')
_FRAME_NAME = re.compile(r'^\d{6}_\d{6}$')
_CITY = re.compile(r'^[a-z][a-z0-9-]*$')
#: Thing instances per class a 16-bit ``label_id * 1000 + k`` can number.
MAX_INSTANCES_PER_CLASS = 1000


@dataclass(frozen=True)
class CityscapesFramePaths:
    """The files written for one frame."""

    image: str
    label_ids: str
    instance_ids: str
    label_train_ids: str
    color: str


def frame_paths(root: str, split: str, city: str, frame_name: str) -> CityscapesFramePaths:
    """Paths of a frame's files (validates the names, creates nothing)."""
    if split not in SPLITS:
        raise ValueError(f'split {split!r} is not one of {", ".join(SPLITS)}')
    if not _CITY.match(city):
        raise ValueError(f'city {city!r} must be lower-case letters, digits and "-", starting '
                         'with a letter (no "_": Cityscapes splits file names on it)')
    if not _FRAME_NAME.match(frame_name):
        raise ValueError(f'frame name {frame_name!r} must be "<seq>_<frame>" with six digits '
                         'each, e.g. "000000_000019"')
    prefix = f'{city}_{frame_name}'
    image_dir = os.path.join(root, 'leftImg8bit', split, city)
    label_dir = os.path.join(root, 'gtFine', split, city)
    return CityscapesFramePaths(
        image=os.path.join(image_dir, prefix + '_leftImg8bit.png'),
        label_ids=os.path.join(label_dir, prefix + '_gtFine_labelIds.png'),
        instance_ids=os.path.join(label_dir, prefix + '_gtFine_instanceIds.png'),
        label_train_ids=os.path.join(label_dir, prefix + '_gtFine_labelTrainIds.png'),
        color=os.path.join(label_dir, prefix + '_gtFine_color.png'))


def cityscapes_instance_ids(semantic: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """Encode a frame's labels as a Cityscapes ``instanceIds`` image.

    Args:
        semantic: (H, W) uint8 train ids (255 = void).
        instance: (H, W) int32 instance ids, 0 = none, > 0 only on thing pixels.

    Returns:
        (H, W) uint16: ``label_id * 1000 + k`` on instance pixels (``k`` = 0, 1, ... per class
        in order of instance id), the label id elsewhere.
    """
    label_ids = train_id_to_cityscapes_label_lut()[semantic]
    encoded = label_ids.astype(np.uint16)
    ids = np.unique(instance[instance > 0])
    per_class: Dict[int, int] = {}
    thing_ids = set(cityscapes().thing_ids)
    for instance_id in ids:
        mask = instance == instance_id
        classes = np.unique(semantic[mask])
        if len(classes) != 1 or int(classes[0]) not in thing_ids:
            raise ValueError(f'instance {instance_id} covers train ids {classes.tolist()}; '
                             'an instance must cover exactly one thing class')
        train_id = int(classes[0])
        k = per_class.get(train_id, 0)
        if k >= MAX_INSTANCES_PER_CLASS:
            raise ValueError(f'more than {MAX_INSTANCES_PER_CLASS} instances of train id '
                             f'{train_id}; Cityscapes instanceIds cannot number them')
        per_class[train_id] = k + 1
        encoded[mask] = int(train_id_to_cityscapes_label_lut()[train_id]) * 1000 + k
    return encoded


def _png(data: np.ndarray, path: str) -> bytes:
    ok, buffer = cv2.imencode('.png', data)
    if not ok:
        raise OSError(f'could not encode {path} as PNG')
    return buffer.tobytes()


def write_cityscapes_frame(root: str, split: str, city: str, frame_name: str,
                           frame) -> CityscapesFramePaths:
    """Write one frame (anything with ``image``, ``semantic``, ``instance``) atomically.

    Args:
        root: Dataset root; folders are created as needed.
        split: ``train``, ``val`` or ``test``.
        city: City folder name (lower case, no ``_``).
        frame_name: ``'<seq>_<frame>'``, six digits each.
        frame: (H, W, 3) uint8 RGB ``image``, (H, W) uint8 train-id ``semantic`` (255 void),
            (H, W) int32 ``instance``.

    Returns:
        The paths written.
    """
    paths = frame_paths(root, split, city, frame_name)
    image = np.asarray(frame.image)
    semantic = np.asarray(frame.semantic)
    instance = np.asarray(frame.instance)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'frame.image must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
    for name, array, dtype in (('semantic', semantic, np.uint8),
                               ('instance', instance, np.int32)):
        if array.shape != image.shape[:2] or array.dtype != dtype:
            raise ValueError(f'frame.{name} must be {image.shape[:2]} {np.dtype(dtype)}, got '
                             f'{array.shape} {array.dtype}')
    label_set = cityscapes()
    unknown = np.setdiff1d(np.unique(semantic), np.arange(label_set.num_classes + 0))
    unknown = unknown[unknown != VOID_ID]
    if unknown.size:
        raise ValueError(f'frame.semantic has train ids {unknown.tolist()} outside the '
                         f'Cityscapes set (0..{label_set.num_classes - 1}, void {VOID_ID})')
    label_ids = train_id_to_cityscapes_label_lut()[semantic]
    color = np.dstack([label_set.colorize(semantic), np.full(semantic.shape, 255, np.uint8)])
    outputs = (
        (paths.image, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)),
        (paths.label_ids, label_ids),
        (paths.instance_ids, cityscapes_instance_ids(semantic, instance)),
        (paths.label_train_ids, semantic),
        (paths.color, cv2.cvtColor(color, cv2.COLOR_RGBA2BGRA)),
    )
    for path, data in outputs:
        atomic_write_bytes(path, _png(data, path))
    return paths
