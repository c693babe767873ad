"""Label sets: class names, train ids, colours and which classes are things.

The default set is Cityscapes' 19 training ids (8 thing classes, train ids 11-18). Built-in
sets, by name (:data:`LABEL_SET_NAMES`): ``cityscapes``, ``voc`` (PASCAL VOC, 21 classes),
``camvid`` (11 classes) and ``ade20k`` (150 classes); their tables are in ``label_tables``.
A label set can be loaded from a YAML file so users can bring their own::

    name: my_robot
    void_id: 255
    classes:
      - {name: floor, color: [128, 64, 128], thing: false}
      - {name: person, color: [220, 20, 60], thing: true}

Train ids are the position of each class in ``classes`` (0-based). The file is read strictly:
``name`` is a non-empty string unique in the set, ``color`` three integers in 0..255,
``thing`` (optional, default false) a YAML boolean (``true``/``false``, not ``"false"`` or 1),
``void_id`` (optional, default 255) an integer in 0..255 that is not a train id; other keys
are refused, so a misspelt key is an error rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numbers
import os
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from . import label_tables

VOID_ID = 255

#: Names of the built-in label sets (:func:`named_label_set`).
LABEL_SET_NAMES: Tuple[str, ...] = ('cityscapes', 'voc', 'camvid', 'ade20k')

_CLASS_KEYS = ('name', 'color', 'thing')
_SET_KEYS = ('name', 'void_id', 'classes')

Color = Tuple[int, int, int]


class LabelSetError(ValueError):
    """A label set definition is malformed."""


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of classes; train id ``i`` is ``names[i]``.

    Attributes:
        name: Short identifier of the set (``cityscapes``).
        names: Class names, indexed by train id.
        colors: RGB colour per train id.
        thing_ids: Train ids of countable classes that get instance ids.
        void_id: Id of unlabelled / ignored pixels (255 by convention).
    """

    name: str
    names: Tuple[str, ...]
    colors: Tuple[Color, ...]
    thing_ids: Tuple[int, ...]
    void_id: int = VOID_ID
    _palette: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.names:
            raise LabelSetError(f'label set {self.name!r} has no classes')
        if len(self.names) != len(self.colors):
            raise LabelSetError(
                f'label set {self.name!r}: {len(self.names)} names but {len(self.colors)} colours')
        if len(self.names) > 254:
            raise LabelSetError(
                f'label set {self.name!r}: {len(self.names)} classes; at most 254 fit in mono8 '
                'with the void id')
        first: Dict[str, int] = {}
        for index, name in enumerate(self.names):
            if name in first:
                raise LabelSetError(
                    f'label set {self.name!r}: class names are not unique: class {index} '
                    f'repeats {name!r} of class {first[name]}')
            first[name] = index
        for train_id in self.thing_ids:
            if not 0 <= train_id < len(self.names):
                raise LabelSetError(
                    f'label set {self.name!r}: thing id {train_id} is not a train id '
                    f'(0..{len(self.names) - 1})')
        if not _is_int(self.void_id) or not 0 <= self.void_id <= 255:
            raise LabelSetError(
                f'label set {self.name!r}: void id {self.void_id!r} is not an integer in 0..255')
        if 0 <= self.void_id < len(self.names):
            raise LabelSetError(
                f'label set {self.name!r}: void id {self.void_id} collides with a train id')
        for index, color in enumerate(self.colors):
            if len(color) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in color):
                raise LabelSetError(
                    f'label set {self.name!r}: class {index} colour {color!r} is not three '
                    'integers in 0..255')
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[:len(self.colors)] = np.asarray(self.colors, dtype=np.uint8)
        object.__setattr__(self, '_palette', palette)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def stuff_ids(self) -> Tuple[int, ...]:
        return tuple(i for i in range(self.num_classes) if i not in self.thing_ids)

    def is_thing(self, train_id: int) -> bool:
        return train_id in self.thing_ids

    @property
    def palette(self) -> np.ndarray:
        """(256, 3) uint8 lookup table; void and unused ids are black."""
        return self._palette

    def colorize(self, train_ids: np.ndarray) -> np.ndarray:
        """Map an (H, W) integer train-id map to an (H, W, 3) uint8 RGB image."""
        ids = np.asarray(train_ids)
        if ids.dtype != np.uint8:
            ids = np.clip(ids, 0, 255).astype(np.uint8)
        return self._palette[ids]

    def to_dict(self) -> Dict[str, Any]:
        thing = set(self.thing_ids)
        return {
            'name': self.name,
            'void_id': self.void_id,
            'classes': [
                {'name': n, 'color': [int(c) for c in col], 'thing': i in thing}
                for i, (n, col) in enumerate(zip(self.names, self.colors))
            ],
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any], source: str = '<dict>') -> 'LabelSet':
        """Build a label set from the mapping of the YAML format (module docstring), strictly.

        Raises:
            LabelSetError: One line naming ``source``, the field and the class index.
        """
        if not isinstance(data, dict) or 'classes' not in data:
            raise LabelSetError(f'{source}: expected a mapping with a "classes" list')
        unknown = sorted(str(key) for key in data if key not in _SET_KEYS)
        if unknown:
            raise LabelSetError(f'{source}: unknown key {unknown[0]!r} (expected '
                                f'{", ".join(_SET_KEYS)})')
        classes = data['classes']
        if not isinstance(classes, list):
            raise LabelSetError(f'{source}: "classes" must be a list')
        name = data.get('name', os.path.basename(source))
        if not isinstance(name, str) or not name:
            raise LabelSetError(f'{source}: "name" must be a non-empty string, got {name!r}')
        void_id = data.get('void_id', VOID_ID)
        if not _is_int(void_id) or not 0 <= void_id <= 255:
            raise LabelSetError(
                f'{source}: "void_id" must be an integer in 0..255, got {void_id!r}')
        names: List[str] = []
        colors: List[Color] = []
        things: List[int] = []
        for index, entry in enumerate(classes):
            class_name, color, thing = _class_entry(index, entry, source)
            names.append(class_name)
            colors.append(color)
            if thing:
                things.append(index)
        try:
            return cls(name=name, names=tuple(names), colors=tuple(colors),
                       thing_ids=tuple(things), void_id=int(void_id))
        except LabelSetError as error:
            raise LabelSetError(f'{source}: {error}') from None

    @classmethod
    def from_yaml(cls, path: str) -> 'LabelSet':
        import yaml
        try:
            with open(path, 'r', encoding='utf-8') as stream:
                data = yaml.safe_load(stream)
        except OSError as error:
            raise LabelSetError(f'cannot read label set {path}: {error.strerror}') from None
        except yaml.YAMLError as error:
            raise LabelSetError(f'label set {path} is not valid YAML: {error}') from None
        return cls.from_dict(data, source=path)


def _is_int(value: Any) -> bool:
    """True for Python and numpy integers, false for booleans, floats and strings."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _class_entry(index: int, entry: Any, source: str) -> Tuple[str, Color, bool]:
    """(name, colour, thing) of class ``index`` of a YAML label set, strictly typed."""
    if not isinstance(entry, dict) or 'name' not in entry or 'color' not in entry:
        raise LabelSetError(f'{source}: class {index} needs "name" and "color" (got {entry!r})')
    unknown = sorted(str(key) for key in entry if key not in _CLASS_KEYS)
    if unknown:
        raise LabelSetError(f'{source}: class {index}: unknown key {unknown[0]!r} (expected '
                            f'{", ".join(_CLASS_KEYS)})')
    name = entry['name']
    if not isinstance(name, str) or not name.strip():
        raise LabelSetError(f'{source}: class {index}: "name" must be a non-empty string, '
                            f'got {name!r}')
    color = entry['color']
    if not isinstance(color, (list, tuple)) or len(color) != 3:
        raise LabelSetError(f'{source}: class {index} ({name!r}): colour must be [r, g, b], '
                            f'got {color!r}')
    if not all(_is_int(c) and 0 <= c <= 255 for c in color):
        raise LabelSetError(f'{source}: class {index} ({name!r}): "color" {list(color)!r} is '
                            'not three integers in 0..255')
    thing = entry.get('thing', False)
    if not isinstance(thing, (bool, np.bool_)):
        raise LabelSetError(f'{source}: class {index} ({name!r}): "thing" must be true or '
                            f'false, got {thing!r} ({type(thing).__name__})')
    return name, (int(color[0]), int(color[1]), int(color[2])), bool(thing)


# (name, Cityscapes label id, train id colour, thing)
_CITYSCAPES: Sequence[Tuple[str, int, Color, bool]] = (
    ('road', 7, (128, 64, 128), False),
    ('sidewalk', 8, (244, 35, 232), False),
    ('building', 11, (70, 70, 70), False),
    ('wall', 12, (102, 102, 156), False),
    ('fence', 13, (190, 153, 153), False),
    ('pole', 17, (153, 153, 153), False),
    ('traffic light', 19, (250, 170, 30), False),
    ('traffic sign', 20, (220, 220, 0), False),
    ('vegetation', 21, (107, 142, 35), False),
    ('terrain', 22, (152, 251, 152), False),
    ('sky', 23, (70, 130, 180), False),
    ('person', 24, (220, 20, 60), True),
    ('rider', 25, (255, 0, 0), True),
    ('car', 26, (0, 0, 142), True),
    ('truck', 27, (0, 0, 70), True),
    ('bus', 28, (0, 60, 100), True),
    ('train', 31, (0, 80, 100), True),
    ('motorcycle', 32, (0, 0, 230), True),
    ('bicycle', 33, (119, 11, 32), True),
)

#: Cityscapes label id (as in ``*_labelIds.png``) of each train id.
CITYSCAPES_LABEL_IDS: Tuple[int, ...] = tuple(entry[1] for entry in _CITYSCAPES)


def cityscapes() -> LabelSet:
    """The 19-class Cityscapes train-id label set (things: train ids 11-18)."""
    return LabelSet(
        name='cityscapes',
        names=tuple(e[0] for e in _CITYSCAPES),
        colors=tuple(e[2] for e in _CITYSCAPES),
        thing_ids=tuple(i for i, e in enumerate(_CITYSCAPES) if e[3]),
    )


def _voc_color(index: int) -> Color:
    """Colour of ``index`` in the PASCAL VOC colour map.

    The bits of the index are dealt out in turn to red, green and blue, filling each channel
    from its most significant bit down: bits 0, 3, 6 make red's bits 7, 6, 5, and so on.
    """
    channels = [0, 0, 0]
    for level in range(8):
        for channel in range(3):
            bit = (index >> (3 * level + channel)) & 1
            channels[channel] |= bit << (7 - level)
    return channels[0], channels[1], channels[2]


def _from_rows(name: str, rows: Sequence[Tuple[str, Color, bool]]) -> LabelSet:
    return LabelSet(name=name, names=tuple(r[0] for r in rows), colors=tuple(r[1] for r in rows),
                    thing_ids=tuple(i for i, r in enumerate(rows) if r[2]))


def voc() -> LabelSet:
    """PASCAL VOC's 21 classes (train id 0 = background, a stuff class; 1-20 are things).

    The classes and order of torchvision's COCO-with-VOC-labels segmentation weights; colours
    from VOC's own colour map. VOC's boundary/void label is 255, our void id.
    """
    names = label_tables.VOC_NAMES
    colors = tuple(_voc_color(i) for i in range(len(names)))
    return LabelSet(name='voc', names=names, colors=colors, thing_ids=tuple(range(1, len(names))))


def camvid() -> LabelSet:
    """CamVid's 11 classes as in SegNet and PyTorch-ENet (things: car, pedestrian, bicyclist).

    Their 12th index, ``unlabelled`` (``label_tables.CAMVID_UNLABELLED_INDEX``), is void here:
    a CamVid model's logit or label 11 must be mapped to :data:`VOID_ID`.
    """
    return _from_rows('camvid', label_tables.CAMVID)


def ade20k() -> LabelSet:
    """The 150 ADE20K SceneParsing classes (index 0 = wall) with the standard palette.

    Things are the 100 classes that the ADE20K panoptic benchmark annotates with instances
    (person, car, chair, bed, ...); amorphous regions (wall, sky, floor, road, grass, water,
    ...) and a few large structures (house, skyscraper, tower) are its 50 stuff classes.
    """
    return _from_rows('ade20k', label_tables.ADE20K)


_BUILT_IN: Dict[str, Callable[[], LabelSet]] = {
    'cityscapes': cityscapes, 'voc': voc, 'camvid': camvid, 'ade20k': ade20k}


def named_label_set(name: str) -> LabelSet:
    """The built-in label set called ``name`` (one of :data:`LABEL_SET_NAMES`, any case)."""
    factory = _BUILT_IN.get(name.lower()) if isinstance(name, str) else None
    if factory is None:
        raise LabelSetError(
            f'unknown label set {name!r}: expected one of {", ".join(LABEL_SET_NAMES)}')
    return factory()


def load_label_set(name_or_path: str) -> LabelSet:
    """A built-in label set by name, else the YAML file at ``name_or_path``.

    A built-in name wins over a file of that name in the working directory (write ``./voc``
    for the file).

    Raises:
        LabelSetError: Neither a built-in name nor a readable, well-formed label set file.
    """
    if name_or_path.lower() in _BUILT_IN:
        return named_label_set(name_or_path)
    looks_like_path = (os.sep in name_or_path or name_or_path.endswith(('.yaml', '.yml'))
                       or os.path.exists(name_or_path))
    if not looks_like_path:
        raise LabelSetError(
            f'unknown label set {name_or_path!r}: expected one of {", ".join(LABEL_SET_NAMES)} '
            'or the path of a YAML label set file')
    return LabelSet.from_yaml(name_or_path)


def cityscapes_label_to_train_id_lut() -> np.ndarray:
    """(256,) uint8 table mapping Cityscapes label ids to train ids (255 = void)."""
    lut = np.full(256, VOID_ID, dtype=np.uint8)
    for train_id, label_id in enumerate(CITYSCAPES_LABEL_IDS):
        lut[label_id] = train_id
    return lut


def train_id_to_cityscapes_label_lut() -> np.ndarray:
    """(256,) uint8 table mapping train ids back to Cityscapes label ids (void -> 0)."""
    lut = np.zeros(256, dtype=np.uint8)
    for train_id, label_id in enumerate(CITYSCAPES_LABEL_IDS):
        lut[train_id] = label_id
    return lut
