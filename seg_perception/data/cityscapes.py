"""Cityscapes-format dataset reader (the real Cityscapes and anything written in its layout).

Layout under ``root``::

    leftImg8bit/<split>/<city>/<frame>_leftImg8bit.png       RGB image
    gtFine/<split>/<city>/<frame>_gtFine_labelIds.png         8-bit Cityscapes label ids
    gtFine/<split>/<city>/<frame>_gtFine_instanceIds.png      16-bit: label_id * 1000 + k for
                                                              thing instances, else label id

Label ids become train ids through a 256-entry lookup table (Cityscapes' by default). A label
id that is neither mapped to a train id nor a known void id is an error, as is a missing
counterpart file, a label of another size than its image, or an unreadable PNG: each raises
``DatasetError`` naming the file and the problem. With ``skip_bad=True`` bad frames are left
out and listed in ``dataset.skipped`` instead; nothing is dropped silently. A split that a
``seg-perception synth`` run did not finish writing (``data.completion``) is refused whole.

The dataset holds only paths and small tables, so it pickles into DataLoader workers; it does
not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
import glob
import os
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..labels import cityscapes, cityscapes_label_to_train_id_lut, LabelSet

IMAGE_SUFFIX = '_leftImg8bit.png'
LABEL_SUFFIX = '_gtFine_labelIds.png'
INSTANCE_SUFFIX = '_gtFine_instanceIds.png'
IMAGE_DIR = 'leftImg8bit'
LABEL_DIR = 'gtFine'

#: Cityscapes label ids without a train id (unlabeled, ego vehicle, ..., caravan, trailer),
#: plus 255 that some tools write for "no label".
CITYSCAPES_VOID_LABEL_IDS: Tuple[int, ...] = (
    0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, 255)

#: instanceIds values at or above this are ``label_id * 1000 + k``.
CITYSCAPES_INSTANCE_OFFSET = 1000

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_GRAY = 0


class DatasetError(ValueError):
    """A dataset folder or one of its files is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class CityscapesFrame:
    """Paths of one frame's files; ``name`` is the shared prefix (``aachen_000000_000019``)."""

    name: str
    image_path: str
    label_path: str
    instance_path: str


@dataclass
class CityscapesSample:
    """One decoded frame.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        semantic: (H, W) uint8 train ids; ``label_set.void_id`` (255) where ignored.
        instance: (H, W) int32 per-frame instance ids 1..K on thing pixels, 0 elsewhere
            (including crowd: thing pixels the annotation gives no instance).
        panoptic: (H, W) int32 ``train_id * label_divisor + instance``; void pixels hold
            ``void_id * label_divisor``.
        name, image_path, label_path, instance_path: Where the frame came from.
    """

    image: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    panoptic: np.ndarray
    name: str
    image_path: str
    label_path: str
    instance_path: str


def _png_header(path: str) -> Tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR; DatasetError if not a PNG."""
    try:
        with open(path, 'rb') as stream:
            head = stream.read(26)
    except OSError as error:
        raise DatasetError(f'{path}: cannot read: {error.strerror}') from None
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b'IHDR':
        raise DatasetError(f'{path}: not a PNG file (corrupt or truncated header)')
    width, height, bit_depth, color_type = struct.unpack('>IIBB', head[16:26])
    return width, height, bit_depth, color_type


def _read_png(path: str, flags: int) -> np.ndarray:
    import cv2
    data = cv2.imread(path, flags)
    if data is None:
        raise DatasetError(f'{path}: cannot decode the PNG (corrupt or unreadable file)')
    return data


class CityscapesDataset:
    """Frames of one split of a Cityscapes-format folder, decoded on ``__getitem__``.

    Args:
        root: Folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: Sub-folder name (``train``, ``val``, ...).
        label_set: Classes the train ids index; default Cityscapes' 19.
        label_divisor: Panoptic id = train id * label_divisor + instance.
        skip_bad: Leave bad frames out and list them in ``skipped`` instead of raising. All
            frames are then decoded once at construction, so content errors (corrupt data,
            unknown label ids) are found up front too.
        label_to_train_id: (256,) integer table label id -> train id, void_id for unmapped;
            default Cityscapes'.
        void_label_ids: Label ids that are known and mean void; default Cityscapes'.

    Raises:
        DatasetError: the folder or split is missing or empty, or (without ``skip_bad``) a
            frame lacks a file, has labels of another size, or a file is not a PNG.
    """

    def __init__(self, root: str, split: str, label_set: Optional[LabelSet] = None,
                 label_divisor: int = 1000, skip_bad: bool = False,
                 label_to_train_id: Optional[np.ndarray] = None,
                 void_label_ids: Sequence[int] = CITYSCAPES_VOID_LABEL_IDS) -> None:
        self.root = root
        self.split = split
        self.label_set = label_set if label_set is not None else cityscapes()
        self.label_divisor = int(label_divisor)
        self.skip_bad = bool(skip_bad)
        self.skipped: List[Tuple[str, str]] = []
        self._lut, self._known = self._label_tables(label_to_train_id, void_label_ids)
        is_thing = np.zeros(256, dtype=bool)
        is_thing[list(self.label_set.thing_ids)] = True
        self._is_thing = is_thing
        self.frames: List[CityscapesFrame] = []
        for frame in self._index():
            try:
                self._check_headers(frame)
                if self.skip_bad:
                    self._load(frame)
            except DatasetError as error:
                self._reject(frame.image_path, str(error))
                continue
            self.frames.append(frame)
        if not self.frames:
            raise DatasetError(
                f'{self._split_dir(IMAGE_DIR)}: no usable frames '
                f'({len(self.skipped)} skipped as bad: {self.skipped[:3]})')

    def _label_tables(self, lut: Optional[np.ndarray], void_label_ids: Sequence[int]
                      ) -> Tuple[np.ndarray, np.ndarray]:
        void = self.label_set.void_id
        if lut is None:
            lut = cityscapes_label_to_train_id_lut()
        lut = np.asarray(lut)
        if lut.shape != (256,):
            raise DatasetError(f'label_to_train_id must have shape (256,), got {lut.shape}')
        mapped = lut != void
        if np.any(mapped & ((lut < 0) | (lut >= self.label_set.num_classes))):
            raise DatasetError(
                f'label_to_train_id maps to ids outside 0..{self.label_set.num_classes - 1} '
                f'and void {void} of label set {self.label_set.name!r}')
        known = mapped.copy()
        for label_id in void_label_ids:
            if not 0 <= int(label_id) <= 255:
                raise DatasetError(f'void label id {label_id} is not in 0..255')
            known[int(label_id)] = True
        return lut.astype(np.uint8), known

    def _split_dir(self, kind: str) -> str:
        return os.path.join(self.root, kind, self.split)

    def _reject(self, path: str, reason: str) -> None:
        if not self.skip_bad:
            raise DatasetError(reason)
        self.skipped.append((path, reason))

    def _index(self) -> List[CityscapesFrame]:
        if not os.path.isdir(self.root):
            raise DatasetError(f'dataset folder {self.root} does not exist')
        from .completion import incomplete_runs
        pending = incomplete_runs(self.root, self.split)
        if pending:
            raise DatasetError(
                f'{self.root}: split {self.split} is incomplete: a synth run writing it did not '
                f'finish ({pending[0]}); run the same command again to finish it, or delete '
                'the marker to use the frames it wrote')
        image_dir, label_dir = self._split_dir(IMAGE_DIR), self._split_dir(LABEL_DIR)
        for folder in (image_dir, label_dir):
            if not os.path.isdir(folder):
                parent = os.path.dirname(folder)
                found = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
                raise DatasetError(
                    f'{folder} does not exist (splits found in {parent}: '
                    f'{", ".join(found) or "none"})')
        images = sorted(glob.glob(os.path.join(image_dir, '*', '*' + IMAGE_SUFFIX)))
        labels = glob.glob(os.path.join(label_dir, '*', '*' + LABEL_SUFFIX))
        instances = glob.glob(os.path.join(label_dir, '*', '*' + INSTANCE_SUFFIX))
        if not images and not labels:
            raise DatasetError(
                f'{image_dir}: no *{IMAGE_SUFFIX} files in its city folders (empty split)')
        frames: List[CityscapesFrame] = []
        for image_path in images:
            city = os.path.basename(os.path.dirname(image_path))
            name = os.path.basename(image_path)[:-len(IMAGE_SUFFIX)]
            frame = CityscapesFrame(
                name=name, image_path=image_path,
                label_path=os.path.join(label_dir, city, name + LABEL_SUFFIX),
                instance_path=os.path.join(label_dir, city, name + INSTANCE_SUFFIX))
            missing = [p for p in (frame.label_path, frame.instance_path)
                       if not os.path.isfile(p)]
            if missing:
                self._reject(image_path, f'{image_path}: label file missing: '
                             f'{", ".join(missing)}')
                continue
            frames.append(frame)
        orphans: Dict[str, List[str]] = {}
        known_images = set(images)
        for suffix, group in ((LABEL_SUFFIX, labels), (INSTANCE_SUFFIX, instances)):
            for label_path in group:
                city = os.path.basename(os.path.dirname(label_path))
                name = os.path.basename(label_path)[:-len(suffix)]
                image_path = os.path.join(image_dir, city, name + IMAGE_SUFFIX)
                if image_path not in known_images:
                    orphans.setdefault(image_path, []).append(label_path)
        for image_path, label_paths in sorted(orphans.items()):
            self._reject(sorted(label_paths)[0],
                         f'{", ".join(sorted(label_paths))}: image file missing: {image_path}')
        return frames

    def _check_headers(self, frame: CityscapesFrame) -> None:
        width, height, _, _ = _png_header(frame.image_path)
        for path in (frame.label_path, frame.instance_path):
            label_width, label_height, _, color_type = _png_header(path)
            if (label_width, label_height) != (width, height):
                raise DatasetError(
                    f'{path}: label is {label_width}x{label_height} but its image '
                    f'{frame.image_path} is {width}x{height}')
            if color_type != _PNG_GRAY:
                raise DatasetError(f'{path}: label must be a single-channel (grey) PNG')

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> CityscapesSample:
        return self._load(self.frames[index])

    def verify(self) -> None:
        """Decode every frame once; raises ``DatasetError`` at the first bad one.

        Construction checks only file presence and PNG headers (sizes, channels); this also
        finds corrupt pixel data and unknown label ids before a long training run starts.
        """
        for frame in self.frames:
            self._load(frame)

    def _load(self, frame: CityscapesFrame) -> CityscapesSample:
        import cv2
        bgr = _read_png(frame.image_path, cv2.IMREAD_COLOR)
        label_ids = _read_png(frame.label_path, cv2.IMREAD_UNCHANGED)
        instance_ids = _read_png(frame.instance_path, cv2.IMREAD_UNCHANGED)
        for path, data in ((frame.label_path, label_ids), (frame.instance_path, instance_ids)):
            if data.ndim != 2:
                raise DatasetError(f'{path}: label must be a single-channel (grey) PNG')
            if data.shape != bgr.shape[:2]:
                raise DatasetError(
                    f'{path}: label is {data.shape[1]}x{data.shape[0]} but its image '
                    f'{frame.image_path} is {bgr.shape[1]}x{bgr.shape[0]}')
        if label_ids.dtype != np.uint8:
            raise DatasetError(
                f'{frame.label_path}: label ids must be 8-bit, got {label_ids.dtype}')
        present = np.flatnonzero(np.bincount(label_ids.ravel(), minlength=256))
        unknown = present[~self._known[present]]
        if unknown.size:
            raise DatasetError(
                f'{frame.label_path}: label id(s) {", ".join(str(v) for v in unknown)} are not '
                f'in label set {self.label_set.name!r} (neither a class nor void)')
        semantic = self._lut[label_ids]
        instance = self._decode_instances(frame.instance_path, instance_ids, semantic)
        void = self.label_set.void_id
        panoptic = semantic.astype(np.int32) * self.label_divisor + instance
        panoptic[semantic == void] = void * self.label_divisor
        return CityscapesSample(
            image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), semantic=semantic, instance=instance,
            panoptic=panoptic, name=frame.name, image_path=frame.image_path,
            label_path=frame.label_path, instance_path=frame.instance_path)

    def _decode_instances(self, path: str, instance_ids: np.ndarray,
                          semantic: np.ndarray) -> np.ndarray:
        """(H, W) int32 instance ids 1..K numbered in order of the raw ids, 0 = none/crowd."""
        raw = instance_ids.astype(np.int64)
        has_instance = (raw >= CITYSCAPES_INSTANCE_OFFSET) & self._is_thing[semantic]
        instance = np.zeros(raw.shape, dtype=np.int32)
        if has_instance.any():
            _, numbers = np.unique(raw[has_instance], return_inverse=True)
            count = int(numbers.max()) + 1
            if count >= self.label_divisor:
                raise DatasetError(
                    f'{path}: {count} instances do not fit below label_divisor '
                    f'{self.label_divisor}')
            instance[has_instance] = numbers.ravel() + 1
        return instance
