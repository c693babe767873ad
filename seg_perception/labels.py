"""Label sets: class names, train ids, colours and which classes are things.

The default set is Cityscapes' 19 training ids (8 thing classes, train ids 11-18).
A label set can be loaded from a YAML file so users can bring their own::

    name: my_robot
    void_id: 255
    classes:
      - {name: floor, color: [128, 64, 128], thing: false}
      - {name: person, color: [220, 20, 60], thing: true}

Train ids are the position of each class in ``classes`` (0-based).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

VOID_ID = 255

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
        if len(set(self.names)) != len(self.names):
            raise LabelSetError(f'label set {self.name!r}: class names are not unique')
        for train_id in self.thing_ids:
            if not 0 <= train_id < len(self.names):
                raise LabelSetError(
                    f'label set {self.name!r}: thing id {train_id} is not a train id '
                    f'(0..{len(self.names) - 1})')
        if 0 <= self.void_id < len(self.names):
            raise LabelSetError(
                f'label set {self.name!r}: void id {self.void_id} collides with a train id')
        for color in self.colors:
            if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
                raise LabelSetError(
                    f'label set {self.name!r}: colour {color!r} is not three values in 0..255')
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
        if not isinstance(data, dict) or 'classes' not in data:
            raise LabelSetError(f'{source}: expected a mapping with a "classes" list')
        classes = data['classes']
        if not isinstance(classes, list):
            raise LabelSetError(f'{source}: "classes" must be a list')
        names: List[str] = []
        colors: List[Color] = []
        things: List[int] = []
        for index, entry in enumerate(classes):
            if not isinstance(entry, dict) or 'name' not in entry or 'color' not in entry:
                raise LabelSetError(
                    f'{source}: class {index} needs "name" and "color" (got {entry!r})')
            names.append(str(entry['name']))
            color = entry['color']
            if not isinstance(color, (list, tuple)) or len(color) != 3:
                raise LabelSetError(f'{source}: class {entry["name"]!r} colour must be [r, g, b]')
            colors.append((int(color[0]), int(color[1]), int(color[2])))
            if bool(entry.get('thing', False)):
                things.append(index)
        try:
            return cls(name=str(data.get('name', os.path.basename(source))), names=tuple(names),
                       colors=tuple(colors), thing_ids=tuple(things),
                       void_id=int(data.get('void_id', VOID_ID)))
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
