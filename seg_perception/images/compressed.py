"""``sensor_msgs/CompressedImage`` (JPEG / PNG) <-> numpy RGB, without ROS.

Works on any object with the message's ``format`` and ``data`` fields (rclpy, rosbags, or the
plain dataclass :class:`CompressedImageMessage` defined here). The image size is read from the
JPEG / PNG header (:func:`read_compressed_header`, which never decompresses) and checked
against the limits of :mod:`seg_perception.images.raw` before anything is decompressed. A
JPEG must end with its end-of-image marker (else it was cut short) and must decode without a
libjpeg corruption warning (:mod:`.libjpeg_warnings`): damaged data is refused, not decoded
into garbage. Every failure raises :class:`~seg_perception.images.raw.ImageDecodeError`.
"""

from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

import numpy as np

from .libjpeg_warnings import call_with_libjpeg_warnings, corruption_warning
from .raw import (
    _byte_buffer,
    _bytes_of,
    _check_array,
    _check_size,
    _cv2,
    _cvt_color,
    _field,
    _make_message,
    encoding_info,
    ImageDecodeError,
)

JPEG_QUALITY_DEFAULT = 90
PNG_COMPRESSION_DEFAULT = 3


@dataclass
class CompressedImageMessage:
    """Plain stand-in for ``sensor_msgs/CompressedImage`` with the same fields."""

    format: str = ''
    data: Any = field(default_factory=lambda: array.array('B'))
    header: Any = None


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_SIGNATURE = b'\xff\xd8'
_CODEC_ALIASES = {'jpeg': 'jpeg', 'jpg': 'jpeg', 'png': 'png'}
# JPEG start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def compressed_codec(format_string: str) -> Optional[str]:
    """Return ``'jpeg'`` or ``'png'`` named in a CompressedImage ``format``, None if empty.

    Understands the plain forms (``'jpeg'``, ``'png'``) and image_transport's
    ``'<encoding>; <codec> compressed <encoding>'`` (e.g. ``'rgb8; jpeg compressed bgr8'``).
    """
    if not isinstance(format_string, str):
        raise ImageDecodeError(
            f'CompressedImage format must be a string, got {type(format_string).__name__}')
    tokens = format_string.lower().replace(';', ' ').split()
    if not tokens:
        return None
    if 'compresseddepth' in tokens:
        raise ImageDecodeError(
            f'format {format_string!r}: compressedDepth images are not supported; '
            'supported codecs: jpeg, png')
    codecs = {_CODEC_ALIASES[token] for token in tokens if token in _CODEC_ALIASES}
    if len(codecs) != 1:
        raise ImageDecodeError(
            f'cannot tell the codec from CompressedImage format {format_string!r}; supported: '
            "'jpeg', 'png', or image_transport's '<enc>; jpeg|png compressed <enc>'")
    return codecs.pop()


def _png_size(data: memoryview) -> Tuple[int, int]:
    if len(data) < 24 or bytes(data[12:16]) != b'IHDR':
        raise ImageDecodeError('PNG data is truncated or lacks its IHDR header')
    width = int.from_bytes(data[16:20], 'big')
    height = int.from_bytes(data[20:24], 'big')
    return height, width


def _jpeg_size(data: memoryview) -> Tuple[int, int]:
    position, length = 2, len(data)
    while position + 4 <= length:
        if data[position] != 0xFF:
            raise ImageDecodeError(f'JPEG data is corrupt: no marker at byte {position}')
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        if marker in _JPEG_SOF_MARKERS:
            if position + 9 > length:
                break
            height = int.from_bytes(data[position + 5:position + 7], 'big')
            width = int.from_bytes(data[position + 7:position + 9], 'big')
            return height, width
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        position += 2 + int.from_bytes(data[position + 2:position + 4], 'big')
    raise ImageDecodeError('JPEG data is truncated or has no frame (SOF) header')


@dataclass(frozen=True)
class CompressedHeader:
    """What a JPEG / PNG header says, read without decompressing anything.

    Attributes:
        codec: ``'jpeg'`` or ``'png'`` (from the data's signature).
        height, width: Image size in pixels.
    """

    codec: str
    height: int
    width: int


def _compressed_payload(msg: Any) -> Tuple[CompressedHeader, np.ndarray]:
    declared = compressed_codec(_field(msg, 'format', 'sensor_msgs/CompressedImage'))
    buffer = _byte_buffer(_field(msg, 'data', 'sensor_msgs/CompressedImage'))
    head = memoryview(buffer)
    if bytes(head[:8]) == _PNG_SIGNATURE:
        actual, (height, width) = 'png', _png_size(head)
    elif bytes(head[:2]) == _JPEG_SIGNATURE:
        actual, (height, width) = 'jpeg', _jpeg_size(head)
    else:
        raise ImageDecodeError(
            f'CompressedImage data ({buffer.size} bytes, starting {bytes(head[:8])!r}) is '
            'neither JPEG nor PNG')
    if declared is not None and declared != actual:
        raise ImageDecodeError(f'CompressedImage format says {declared} but the data is {actual}')
    _check_size(height, width)
    return CompressedHeader(actual, height, width), buffer


def read_compressed_header(msg: Any) -> CompressedHeader:
    """Codec and size of a ``sensor_msgs/CompressedImage``-like message, from its header only.

    Reads the PNG IHDR chunk or the JPEG frame (SOF) header; nothing is decompressed, so a
    small file that would decode to gigabytes costs nothing here. Checks what
    :func:`decode_compressed` checks before decoding.

    Raises:
        ImageDecodeError: unknown or unsupported format, data that is not JPEG/PNG, a format
            that contradicts the data, a truncated header, or an empty or oversized image
            (:data:`MAX_IMAGE_SIDE`, :data:`MAX_IMAGE_PIXELS`).
    """
    return _compressed_payload(msg)[0]


def _check_jpeg_end(buffer: np.ndarray) -> None:
    """Refuse JPEG data without its end-of-image marker (a transfer cut short).

    Padding after the marker (0x00 or 0xFF bytes, which some encoders append) is allowed.
    """
    if not bytes(buffer[-4096:]).rstrip(b'\x00\xff').endswith(b'\xff\xd9'):
        raise ImageDecodeError(f'JPEG data ({buffer.size} bytes) is truncated: it does not end '
                               'with the end-of-image marker (FF D9)')


def decode_compressed(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage``-like message (JPEG or PNG) into RGB.

    The image size is read from the JPEG/PNG header and checked against
    :data:`MAX_IMAGE_SIDE` / :data:`MAX_IMAGE_PIXELS` before anything is decompressed. An
    empty ``format`` is allowed (codec from the data's signature); a non-empty one must name
    the codec the data actually holds. A JPEG must end with its end-of-image marker and
    decode without a libjpeg corruption warning; EXIF orientation is ignored, so the result
    has the header's size.

    Args:
        msg: Object with ``format`` and ``data``.

    Returns:
        (H, W, 3) uint8 RGB, a new array, H and W as in the header. Grey images are
        replicated to three channels; 16-bit PNGs are reduced to 8 bits by OpenCV
        (value >> 8).

    Raises:
        ImageDecodeError: unknown or unsupported format, data that is not JPEG/PNG, a format
            that contradicts the data, oversized or empty image, a truncated or corrupt JPEG,
            or data OpenCV cannot decode.
    """
    header, buffer = _compressed_payload(msg)
    codec = header.codec
    if codec == 'jpeg':
        _check_jpeg_end(buffer)
    cv2 = _cv2()

    def decode() -> Optional[np.ndarray]:
        return cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)

    damage = None
    try:
        if codec == 'jpeg':
            bgr, warnings = call_with_libjpeg_warnings(decode)
            damage = corruption_warning(warnings)
        else:
            bgr = decode()
    except cv2.error as error:
        raise ImageDecodeError(f'OpenCV could not decode the {codec} data: {error}') from None
    if bgr is None:
        raise ImageDecodeError(f'{codec} data ({buffer.size} bytes) could not be decoded')
    if damage is not None:
        raise ImageDecodeError(f'JPEG data ({buffer.size} bytes) is corrupt: libjpeg: {damage}')
    if bgr.shape[:2] != (header.height, header.width):
        raise ImageDecodeError(
            f'decoded {codec} is {bgr.shape[1]}x{bgr.shape[0]} but its header says '
            f'{header.width}x{header.height}')
    return _cvt_color(bgr, 'COLOR_BGR2RGB', f'decoded {codec}')


_COMPRESSIBLE = {'rgb8': 'COLOR_RGB2BGR', 'bgr8': None, 'mono8': None}


def encode_compressed(image: np.ndarray, codec: str = 'jpeg', encoding: str = 'rgb8',
                      header: Any = None, compressed_msg_type: Optional[type] = None,
                      jpeg_quality: int = JPEG_QUALITY_DEFAULT,
                      png_compression: int = PNG_COMPRESSION_DEFAULT) -> Any:
    """Build a ``sensor_msgs/CompressedImage`` (or :class:`CompressedImageMessage`).

    Args:
        image: (H, W, 3) uint8 for ``rgb8`` / ``bgr8``, (H, W) uint8 for ``mono8``.
        codec: ``'jpeg'`` or ``'png'``.
        encoding: Channel order of ``image``: ``rgb8``, ``bgr8`` or ``mono8``.
        header: Copied into the message's ``header`` when given.
        compressed_msg_type: Message class, e.g. ``sensor_msgs.msg.CompressedImage``;
            ``None`` builds a :class:`CompressedImageMessage`.
        jpeg_quality: 1..100, for JPEG.
        png_compression: zlib level 0..9, for PNG.

    Returns:
        The message; ``format`` follows image_transport, e.g.
        ``'rgb8; jpeg compressed bgr8'`` or ``'mono8; png compressed mono8'``.

    Raises:
        ImageDecodeError: unsupported codec or encoding, wrong dtype/shape, bad quality or
            compression level, or an encoder failure.
    """
    codec_name = _CODEC_ALIASES.get(codec) if isinstance(codec, str) else None
    if codec_name is None:
        raise ImageDecodeError(f'unsupported codec {codec!r}; choose jpeg or png')
    if encoding not in _COMPRESSIBLE:
        raise ImageDecodeError(
            f'encode_compressed takes rgb8, bgr8 or mono8 images, not {encoding!r}')
    image = _check_array(image, encoding_info(encoding))
    cv2 = _cv2()
    if codec_name == 'jpeg':
        if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, (int, np.integer)) \
                or not 1 <= jpeg_quality <= 100:
            raise ImageDecodeError(f'jpeg_quality must be an integer in 1..100, got '
                                   f'{jpeg_quality!r}')
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    else:
        if isinstance(png_compression, bool) \
                or not isinstance(png_compression, (int, np.integer)) \
                or not 0 <= png_compression <= 9:
            raise ImageDecodeError(f'png_compression must be an integer in 0..9, got '
                                   f'{png_compression!r}')
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(png_compression)]
    code = _COMPRESSIBLE[encoding]
    native = image if code is None else _cvt_color(image, code, encoding)
    try:
        ok, encoded = cv2.imencode('.jpg' if codec_name == 'jpeg' else '.png', native, params)
    except cv2.error as error:
        raise ImageDecodeError(f'OpenCV could not encode {codec_name}: {error}') from None
    if not ok:
        raise ImageDecodeError(f'OpenCV failed to encode the image as {codec_name}')
    target = 'mono8' if encoding == 'mono8' else 'bgr8'
    fields = {'format': f'{encoding}; {codec_name} compressed {target}',
              'data': _bytes_of(encoded)}
    return _make_message(compressed_msg_type, CompressedImageMessage, fields, header)
