"""Ground-truth label images from bags: train ids (mono8 / mono16) or panoptic ids (32SC1).

A label message is a ``sensor_msgs/Image`` of the same size as its camera image:

* ``mono8`` / ``8UC1`` / ``mono16`` / ``16UC1``: train ids, ``void_id`` where unlabelled;
* ``32SC1``: panoptic ids ``train_id * label_divisor + instance`` (void pixels
  ``void_id * label_divisor``), as the node publishes and ``synth-bag`` records.

Any other encoding, an id outside the label set, or a negative panoptic id raises
:class:`LabelError` (the evaluator counts such a frame as a listed skip).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..labels import LabelSet

SEMANTIC_ENCODINGS = ('mono8', '8UC1', 'mono16', '16UC1')
PANOPTIC_ENCODINGS = ('32SC1',)
LABEL_ENCODINGS = SEMANTIC_ENCODINGS + PANOPTIC_ENCODINGS


class LabelError(ValueError):
    """A label image cannot be used as ground truth (encoding, ids or size)."""


def check_train_ids(semantic: np.ndarray, label_set: LabelSet, what: str) -> np.ndarray:
    """Return ``semantic`` as uint8 (H, W) after checking every id is a class or void."""
    present = np.flatnonzero(np.bincount(semantic.ravel().astype(np.intp, copy=False)))
    bad = present[(present >= label_set.num_classes) & (present != label_set.void_id)]
    if bad.size:
        raise LabelError(
            f'{what} has id(s) {", ".join(str(v) for v in bad[:8])} that are neither a train id '
            f'of label set {label_set.name!r} (0..{label_set.num_classes - 1}) nor void '
            f'{label_set.void_id}')
    return semantic.astype(np.uint8, copy=False)


def decode_label(msg: Any, label_set: LabelSet, label_divisor: int, what: str = 'label'
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Decode a label ``sensor_msgs/Image``.

    Args:
        msg: Image-like message (rosbags, rclpy or ``ImageMessage``).
        label_set: Classes the ids index.
        label_divisor: Panoptic id = train id * label_divisor + instance.
        what: Names the label in error messages (topic and stamp).

    Returns:
        ``(semantic, panoptic)``: uint8 (H, W) train ids, and int32 (H, W) panoptic ids or
        None for train-id labels.

    Raises:
        LabelError: unsupported encoding, ids outside the label set, negative panoptic ids,
            or a message that does not decode.
    """
    from ..images.raw import decode_image, ImageDecodeError
    encoding = getattr(msg, 'encoding', None)
    if encoding not in LABEL_ENCODINGS:
        raise LabelError(f'{what} has encoding {encoding!r}; label images must be one of '
                         f'{", ".join(LABEL_ENCODINGS)} (train ids) or 32SC1 (panoptic ids)')
    try:
        values = decode_image(msg)
    except ImageDecodeError as error:
        raise LabelError(f'{what} does not decode: {error}') from None
    if encoding in SEMANTIC_ENCODINGS:
        return check_train_ids(values, label_set, what), None
    panoptic = np.ascontiguousarray(values, dtype=np.int32)
    low = int(panoptic.min())
    if low < 0:
        raise LabelError(f'{what} has negative panoptic id {low}')
    classes = panoptic // int(label_divisor)
    if int(classes.max()) > 255:
        raise LabelError(f'{what} has panoptic id {int(panoptic.max())} whose class '
                         f'{int(classes.max())} is above 255 (label_divisor {label_divisor})')
    semantic = check_train_ids(classes, label_set, f'{what} (class = id // {label_divisor})')
    return semantic, panoptic


def check_same_size(image_hw: Tuple[int, int], label_hw: Tuple[int, int], what: str) -> None:
    """Raise ``LabelError`` when a label's (height, width) differs from its image's."""
    if tuple(image_hw) != tuple(label_hw):
        raise LabelError(f'{what} is {label_hw[1]}x{label_hw[0]} but its image is '
                         f'{image_hw[1]}x{image_hw[0]}')
