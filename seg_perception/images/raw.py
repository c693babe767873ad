"""``sensor_msgs/Image`` <-> numpy, without ROS: every raw encoding, decode, encode, to RGB.

Works on any object that has the message's fields (duck typing): ``height, width, encoding,
is_bigendian, step, data``. That covers rclpy messages (``data`` is an ``array.array('B')``),
rosbags messages (``data`` is a uint8 ``np.ndarray``), and the plain dataclass
:class:`ImageMessage` defined here. Nothing here imports rclpy.

Decoding is zero-copy whenever the message's byte order is the machine's: the returned array
is a strided view of ``msg.data`` that skips row padding (``step > width * bytes_per_pixel``).
Building a message copies the pixels once into an ``array.array('B')``, which rclpy's ``data``
setter stores as is (assigning a list or a memoryview is ~100x slower there).

Every malformed message, unsupported encoding or unsuitable array raises
:class:`ImageDecodeError`, a ``ValueError`` whose message says what is wrong; the compressed
codec (:mod:`seg_perception.images.compressed`) raises the same error and reuses the field,
size and buffer checks defined here.
"""

from __future__ import annotations

import array
from dataclasses import dataclass, field
import operator
import sys
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple

import numpy as np

# Sanity limits against corrupt headers and decompression bombs, far above any camera:
# 16384 pixels per side and 2**27 (134 M) pixels in all, e.g. 16384 x 8192.
MAX_IMAGE_SIDE = 16384
MAX_IMAGE_PIXELS = 2 ** 27


class ImageDecodeError(ValueError):
    """An image message or array is malformed, unsupported, or cannot be converted."""


@dataclass(frozen=True)
class ImageEncoding:
    """How one ``sensor_msgs/Image`` encoding lays out its pixels.

    Attributes:
        name: The ROS encoding string (``rgb8``, ``16UC1``, ``yuv422``...).
        channels: Channels in the native numpy layout (yuv422: 2, interleaved chroma/luma).
        dtype: Element type in the native layout (byte order not included).
        layout: Meaning of the channels: ``rgb``, ``bgr``, ``rgba``, ``bgra``, ``mono``,
            ``bayer_rggb`` / ``bayer_bggr`` / ``bayer_gbrg`` / ``bayer_grbg``, ``uyvy``,
            ``yuyv``, or ``generic`` for the ``NUCk`` / ``NSCk`` / ``NFCk`` encodings.
    """

    name: str
    channels: int
    dtype: np.dtype
    layout: str

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.dtype.itemsize

    @property
    def shape_suffix(self) -> Tuple[int, ...]:
        """Trailing array dimensions after (H, W): ``()`` for one channel, else ``(C,)``."""
        return () if self.channels == 1 else (self.channels,)


def _build_encodings() -> Mapping[str, ImageEncoding]:
    u8, u16 = np.dtype(np.uint8), np.dtype(np.uint16)
    table = {}

    def add(name: str, channels: int, dtype: np.dtype, layout: str) -> None:
        table[name] = ImageEncoding(name, channels, np.dtype(dtype), layout)

    for layout, channels in (('rgb', 3), ('bgr', 3), ('rgba', 4), ('bgra', 4)):
        add(f'{layout}8', channels, u8, layout)
        add(f'{layout}16', channels, u16, layout)
    add('mono8', 1, u8, 'mono')
    add('mono16', 1, u16, 'mono')
    for pattern in ('rggb', 'bggr', 'gbrg', 'grbg'):
        add(f'bayer_{pattern}8', 1, u8, f'bayer_{pattern}')
        add(f'bayer_{pattern}16', 1, u16, f'bayer_{pattern}')
    for name in ('yuv422', 'uyvy'):
        add(name, 2, u8, 'uyvy')
    for name in ('yuv422_yuy2', 'yuyv'):
        add(name, 2, u8, 'yuyv')
    generic_types = (('8U', np.uint8), ('8S', np.int8), ('16U', np.uint16), ('16S', np.int16),
                     ('32S', np.int32), ('32F', np.float32), ('64F', np.float64))
    for prefix, dtype in generic_types:
        for channels in (1, 2, 3, 4):
            add(f'{prefix}C{channels}', channels, dtype, 'generic')
    return MappingProxyType(table)


ENCODINGS: Mapping[str, ImageEncoding] = _build_encodings()
SUPPORTED_ENCODINGS: Tuple[str, ...] = tuple(ENCODINGS)


def encoding_info(encoding: str) -> ImageEncoding:
    """Describe ``encoding``; raise :class:`ImageDecodeError` listing valid names if unknown."""
    info = ENCODINGS.get(encoding) if isinstance(encoding, str) else None
    if info is None:
        raise ImageDecodeError(
            f'unsupported image encoding {encoding!r}; supported (case-sensitive): '
            + ', '.join(SUPPORTED_ENCODINGS))
    return info


@dataclass
class ImageMessage:
    """Plain stand-in for ``sensor_msgs/Image`` with the same fields."""

    height: int = 0
    width: int = 0
    encoding: str = ''
    is_bigendian: int = 0
    step: int = 0
    data: Any = field(default_factory=lambda: array.array('B'))
    header: Any = None


# --------------------------------------------------------------------------- raw images


def _field(msg: Any, name: str, kind: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageDecodeError(
            f'{type(msg).__name__} has no field {name!r}; expected a {kind}-like message'
        ) from None


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ImageDecodeError(f'image {name} must be an integer, got bool {value!r}')
    try:
        number = operator.index(value)
    except TypeError:
        raise ImageDecodeError(
            f'image {name} must be an integer, got {type(value).__name__} {value!r}') from None
    if number < 0:
        raise ImageDecodeError(f'image {name} must be >= 0, got {number}')
    return number


def _check_size(height: int, width: int) -> None:
    if height == 0 or width == 0:
        raise ImageDecodeError(f'image is empty: height={height}, width={width}')
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        raise ImageDecodeError(
            f'image size {width}x{height} exceeds the limit of {MAX_IMAGE_SIDE} pixels per side')
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f'image size {width}x{height} = {height * width} pixels exceeds the limit of '
            f'{MAX_IMAGE_PIXELS}')


def _byte_buffer(data: Any) -> np.ndarray:
    """View ``data`` as a 1-D uint8 array, without copying when it exposes a byte buffer.

    Accepts ``array.array('B')``, ``bytes``, ``bytearray``, ``memoryview``, 1-D uint8
    ``np.ndarray`` (no copy) and lists / tuples of ints in [0, 255] (copied).
    """
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise ImageDecodeError(
                f'image data array must be 1-D uint8, got {data.ndim}-D {data.dtype}')
        return np.ascontiguousarray(data)
    if isinstance(data, (list, tuple)):
        try:
            values = np.asarray(data)
        except (TypeError, ValueError) as error:
            raise ImageDecodeError(f'image data is not a sequence of bytes: {error}') from None
        if values.size and (values.dtype.kind not in 'iu' or values.ndim != 1
                            or values.min() < 0 or values.max() > 255):
            raise ImageDecodeError('image data list must hold integers in [0, 255]')
        return values.astype(np.uint8)
    try:
        view = memoryview(data)
    except TypeError:
        raise ImageDecodeError(
            f'image data must be bytes-like (bytes, array.array, uint8 ndarray), got '
            f'{type(data).__name__}') from None
    if view.itemsize != 1 or not view.c_contiguous:
        raise ImageDecodeError(
            f'image data must be a contiguous byte buffer, got item size {view.itemsize} '
            f'(format {view.format!r})')
    return np.frombuffer(view.cast('B') if view.ndim != 1 else view, dtype=np.uint8)


def _numpy_is_big_endian(dtype: np.dtype) -> bool:
    return dtype.byteorder == '>' or (dtype.byteorder == '=' and sys.byteorder == 'big')


def decode_image(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image``-like message into its native numpy layout.

    Args:
        msg: Object with ``height, width, encoding, is_bigendian, step, data``.

    Returns:
        (H, W) for one-channel encodings, else (H, W, C), in the encoding's dtype
        (``ENCODINGS[msg.encoding].dtype``) and in native byte order. yuv422 / yuv422_yuy2
        come back as (H, W, 2) uint8 and Bayer images as the raw (H, W) mosaic. When the
        data's byte order is native the result is a view of ``msg.data`` (no copy; row
        padding skipped through strides) and is writeable exactly when ``msg.data`` is;
        copy it before keeping it past the message's lifetime or modifying it.

    Raises:
        ImageDecodeError: unknown encoding, empty or oversized image, step too small,
            data length != height * step, odd width for a 4:2:2 encoding, bad field types.
    """
    height, width, step, info, is_bigendian, buffer = _checked_fields(msg)
    item = info.dtype.itemsize
    wire_dtype = info.dtype.newbyteorder('>' if is_bigendian else '<') if item > 1 else info.dtype
    strides = (step, info.bytes_per_pixel) + ((item,) if info.channels > 1 else ())
    image = np.ndarray((height, width) + info.shape_suffix, dtype=wire_dtype, buffer=buffer,
                       strides=strides)
    if item > 1 and is_bigendian != (sys.byteorder == 'big'):
        return image.astype(info.dtype.newbyteorder('='))
    return image


def _checked_fields(msg: Any) -> Tuple[int, int, int, ImageEncoding, bool, np.ndarray]:
    """decode_image's checks: (height, width, step, encoding, is_bigendian, data bytes)."""
    height = _non_negative_int(_field(msg, 'height', 'sensor_msgs/Image'), 'height')
    width = _non_negative_int(_field(msg, 'width', 'sensor_msgs/Image'), 'width')
    step = _non_negative_int(_field(msg, 'step', 'sensor_msgs/Image'), 'step')
    info = encoding_info(_field(msg, 'encoding', 'sensor_msgs/Image'))
    is_bigendian = bool(_field(msg, 'is_bigendian', 'sensor_msgs/Image'))
    _check_size(height, width)
    if info.layout in ('uyvy', 'yuyv') and width % 2:
        raise ImageDecodeError(
            f'{info.name} packs two pixels per 4 bytes, so width must be even; got {width}')
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f'step {step} is smaller than width * bytes per pixel = {width} * '
            f'{info.bytes_per_pixel} = {row_bytes} for {info.name}')
    buffer = _byte_buffer(_field(msg, 'data', 'sensor_msgs/Image'))
    if buffer.size != height * step:
        raise ImageDecodeError(
            f'data length {buffer.size} != height * step = {height} * {step} = {height * step}')
    return height, width, step, info, is_bigendian, buffer


# --------------------------------------------------------------------------- to RGB


def _cv2():
    import cv2  # imported on first use so that importing this module stays cheap
    return cv2


def _cvt_color(image: np.ndarray, code_name: str, what: str) -> np.ndarray:
    cv2 = _cv2()
    try:
        return cv2.cvtColor(image, getattr(cv2, code_name))
    except cv2.error as error:
        raise ImageDecodeError(f'OpenCV could not convert {what} ({code_name}): {error}') from None


def _to_uint8(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Scale unsigned 16-bit data with ``bit_depth`` significant bits to uint8."""
    if image.dtype == np.uint8:
        return image
    full_scale = (1 << bit_depth) - 1
    # Rounds to nearest and saturates values above full scale at 255.
    return _cv2().convertScaleAbs(image, alpha=255.0 / full_scale)


# OpenCV's legacy Bayer names count from the second row / column: its "BG" is ROS' rggb.
# These names mean the same in OpenCV 4.x and 5.x.
_BAYER_TO_RGB = {'bayer_rggb': 'COLOR_BayerBG2RGB', 'bayer_bggr': 'COLOR_BayerRG2RGB',
                 'bayer_gbrg': 'COLOR_BayerGR2RGB', 'bayer_grbg': 'COLOR_BayerGB2RGB'}
_LAYOUT_TO_RGB = {'bgr': 'COLOR_BGR2RGB', 'rgba': 'COLOR_RGBA2RGB', 'bgra': 'COLOR_BGRA2RGB',
                  'mono': 'COLOR_GRAY2RGB', 'uyvy': 'COLOR_YUV2RGB_UYVY',
                  'yuyv': 'COLOR_YUV2RGB_YUY2', **_BAYER_TO_RGB}
_GENERIC_RGB_CHANNELS = {1: 'COLOR_GRAY2RGB', 3: None, 4: 'COLOR_RGBA2RGB'}


def rgb8_convertible(encoding: str) -> bool:
    """Whether :func:`to_rgb8` accepts ``encoding``."""
    info = ENCODINGS.get(encoding) if isinstance(encoding, str) else None
    if info is None:
        return False
    if info.layout != 'generic':
        return True
    return info.dtype in (np.uint8, np.uint16) and info.channels in _GENERIC_RGB_CHANNELS


def _rgb_encoding(msg: Any) -> ImageEncoding:
    info = encoding_info(_field(msg, 'encoding', 'sensor_msgs/Image'))
    if not rgb8_convertible(info.name):
        raise ImageDecodeError(
            f'encoding {info.name} has no RGB interpretation; use decode_image() for its raw '
            'values. RGB-convertible: '
            + ', '.join(name for name in SUPPORTED_ENCODINGS if rgb8_convertible(name)))
    return info


def to_rgb8(msg: Any, bit_depth: int = 16) -> np.ndarray:
    """Decode a ``sensor_msgs/Image``-like message into RGB for the network.

    Conversions: bgr/rgba/bgra drop or reorder channels; mono is replicated to three grey
    channels; yuv422 (UYVY) and yuv422_yuy2 (YUYV) use OpenCV's BT.601 limited-range
    conversion; Bayer mosaics are demosaiced bilinearly by OpenCV. ``8UC3`` / ``16UC3`` carry no
    channel order, so they pass through unchanged (as cv_bridge does), ``NUC4`` drops the
    fourth channel and ``NUC1`` is treated as mono.

    16-bit data (mono16, rgb16..., bayer_*16, 16UC1/3/4) is scaled linearly so that
    ``2**bit_depth - 1`` maps to 255 (rounded; larger values saturate at 255). The default
    16 suits full-range data; pass 10 or 12 for cameras that put 10/12-bit samples in 16-bit
    words, which otherwise look nearly black.

    Args:
        msg: Object with ``height, width, encoding, is_bigendian, step, data``.
        bit_depth: Significant bits of 16-bit input, 1..16; ignored for 8-bit input.

    Returns:
        (H, W, 3) uint8 RGB. For rgb8 and 8UC3 input this is a view of ``msg.data``
        (possibly strided); every other encoding yields a new contiguous array.

    Raises:
        ImageDecodeError: everything :func:`decode_image` raises, plus encodings with no RGB
            meaning (signed, 32-bit, float, two-channel generic) and a bad ``bit_depth``.
    """
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, (int, np.integer)) \
            or not 1 <= bit_depth <= 16:
        raise ImageDecodeError(f'bit_depth must be an integer in 1..16, got {bit_depth!r}')
    info = _rgb_encoding(msg)
    image = decode_image(msg)
    if image.strides[0] % image.itemsize:
        # A row step that is not a whole number of elements (e.g. 16-bit pixels after an odd
        # row padding): OpenCV 4.x refuses such views ("Image step is wrong"), so copy.
        image = np.ascontiguousarray(image)
    if info.layout in _BAYER_TO_RGB:
        # Demosaic at full precision, then scale.
        rgb = _cvt_color(image, _BAYER_TO_RGB[info.layout], info.name)
        return _to_uint8(rgb, bit_depth)
    image = _to_uint8(image, bit_depth)
    if info.layout == 'generic':
        code = _GENERIC_RGB_CHANNELS[info.channels]
    else:
        code = _LAYOUT_TO_RGB.get(info.layout)
    return image if code is None else _cvt_color(image, code, info.name)


# --------------------------------------------------------------------------- building


def _check_array(image: Any, info: ImageEncoding) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageDecodeError(f'image must be a numpy array, got {type(image).__name__}')
    expected = ('(H, W) or (H, W, 1)' if info.channels == 1
                else f'(H, W, {info.channels})')
    if info.channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 + len(info.shape_suffix) or image.shape[2:] != info.shape_suffix:
        raise ImageDecodeError(
            f'{info.name} needs an array of shape {expected}, got shape {image.shape}')
    if image.dtype.newbyteorder('=') != info.dtype.newbyteorder('='):
        raise ImageDecodeError(
            f'{info.name} needs dtype {info.dtype}, got {image.dtype}; convert explicitly')
    height, width = image.shape[:2]
    _check_size(height, width)
    if info.layout in ('uyvy', 'yuyv') and width % 2:
        raise ImageDecodeError(f'{info.name} needs an even width, got {width}')
    return image


def _bytes_of(image: np.ndarray) -> array.array:
    """Copy ``image`` once into an ``array.array('B')`` (rclpy stores that type as is)."""
    contiguous = np.ascontiguousarray(image)
    data = array.array('B')
    data.frombytes(contiguous.reshape(-1).view(np.uint8))
    return data


def _make_message(msg_type: Optional[type], default_type: type, fields: dict,
                  header: Any) -> Any:
    if header is not None:
        fields['header'] = header
    if msg_type is None:
        return default_type(**fields)
    if hasattr(msg_type, '__msgtype__'):
        # rosbags message classes serialize uint8[] fields from numpy arrays only.
        fields['data'] = np.frombuffer(fields['data'], dtype=np.uint8)
    try:
        return msg_type(**fields)
    except (TypeError, AssertionError) as error:
        raise ImageDecodeError(
            f'could not build {getattr(msg_type, "__name__", msg_type)!r} from fields '
            f'{sorted(fields)}: {error}') from None


def encode_image(image: np.ndarray, encoding: str, header: Any = None,
                 image_msg_type: Optional[type] = None) -> Any:
    """Build a ``sensor_msgs/Image`` (or :class:`ImageMessage`) from an array.

    Args:
        image: (H, W) or (H, W, 1) for one-channel encodings, (H, W, C) otherwise, with
            exactly the encoding's dtype (``ENCODINGS[encoding].dtype``; no implicit cast).
            A non-native byte order is kept and reported through ``is_bigendian``.
        encoding: A name from :data:`SUPPORTED_ENCODINGS`.
        header: Copied into the message's ``header`` when given (e.g. the input's header).
        image_msg_type: Message class to build, e.g. ``sensor_msgs.msg.Image`` or a rosbags
            typestore's ``sensor_msgs/msg/Image`` (which needs ``header``); called with
            keyword fields. ``None`` builds an :class:`ImageMessage`.

    Returns:
        The message, with ``step = W * bytes_per_pixel`` (no padding) and ``data`` an
        ``array.array('B')`` holding one copy of the pixels (a uint8 ndarray viewing that
        copy for rosbags message classes).

    Raises:
        ImageDecodeError: unknown encoding, wrong dtype or shape, empty or oversized image,
            odd width for a 4:2:2 encoding, or a message class that rejects the fields.
    """
    info = encoding_info(encoding)
    image = _check_array(image, info)
    height, width = image.shape[:2]
    fields = {'height': int(height), 'width': int(width), 'encoding': info.name,
              'is_bigendian': int(info.dtype.itemsize > 1 and _numpy_is_big_endian(image.dtype)),
              'step': int(width * info.bytes_per_pixel), 'data': _bytes_of(image)}
    return _make_message(image_msg_type, ImageMessage, fields, header)
