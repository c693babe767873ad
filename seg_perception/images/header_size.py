"""The size an image message declares, read without decoding it (the node's first check).

A camera frame is checked against the camera's size and the node's pixel limit in the
subscription callback, before anything is decoded; decoding happens later, in the inference
thread, for the newest frame only. For a ``CompressedImage`` the size comes from the PNG IHDR
or JPEG frame header (:func:`~seg_perception.images.compressed.read_compressed_header`), so a
small PNG that would inflate to gigabytes is refused at the cost of reading 24 bytes. A
``sensor_msgs/Image`` gets every check :func:`~seg_perception.images.raw.to_rgb8` makes
before it converts (fields, encoding, step, data length), none of which reads a pixel.
"""

from __future__ import annotations

from typing import Any, Tuple

from .compressed import read_compressed_header
from .raw import _checked_fields, _rgb_encoding


def declared_size(msg: Any, compressed: bool) -> Tuple[int, int]:
    """(height, width) that ``msg`` declares, after the checks that need no decoding.

    Args:
        msg: A ``sensor_msgs/Image``-like message, or a ``CompressedImage``-like one when
            ``compressed``.
        compressed: Which of the two ``msg`` is.

    Raises:
        ImageDecodeError: a raw message that ``to_rgb8`` would refuse before converting; an
            unreadable or inconsistent JPEG/PNG header; an empty or oversized image
            (``MAX_IMAGE_SIDE``, ``MAX_IMAGE_PIXELS``). Compressed data itself is checked when
            the frame is decoded.
    """
    if compressed:
        header = read_compressed_header(msg)
        return header.height, header.width
    _rgb_encoding(msg)
    height, width = _checked_fields(msg)[:2]
    return height, width
