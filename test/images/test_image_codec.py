"""images.raw and images.compressed: sensor_msgs Image / CompressedImage <-> numpy, ROS or not."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from seg_perception.images.compressed import (
    CompressedImageMessage,
    decode_compressed,
    encode_compressed,
)
from seg_perception.images.raw import (
    decode_image,
    encode_image,
    ENCODINGS,
    ImageDecodeError,
    ImageMessage,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    rgb8_convertible,
    SUPPORTED_ENCODINGS,
    to_rgb8,
)

REQUIRED_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '8UC1', '8UC3',
                      '16UC1', '32SC1', '32FC1', 'yuv422', 'yuv422_yuy2', 'bayer_rggb8',
                      'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8')
HEIGHT, WIDTH = 4, 6


def _ros_types():
    msg = pytest.importorskip('sensor_msgs.msg')
    return msg.Image, msg.CompressedImage


def _random_array(encoding, height=HEIGHT, width=WIDTH, seed=0):
    info = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) + info.shape_suffix
    if info.dtype.kind == 'f':
        return rng.normal(0.0, 1000.0, shape).astype(info.dtype)
    limits = np.iinfo(info.dtype)
    return rng.integers(limits.min, limits.max, shape, dtype=info.dtype, endpoint=True)


def _duck(array, encoding, padding=0, big_endian=False, data_type=bytes):
    """A hand-built Image-like object whose rows carry ``padding`` junk bytes."""
    info = ENCODINGS[encoding]
    wire = array.astype(array.dtype.newbyteorder('>' if big_endian else '<'))
    rows = wire.reshape(array.shape[0], -1).view(np.uint8)
    padded = np.full((rows.shape[0], rows.shape[1] + padding), 0xEE, dtype=np.uint8)
    padded[:, :rows.shape[1]] = rows
    return SimpleNamespace(height=array.shape[0], width=array.shape[1], encoding=encoding,
                           is_bigendian=int(big_endian),
                           step=array.shape[1] * info.bytes_per_pixel + padding,
                           data=data_type(padded.reshape(-1)))


def _uniform(encoding, pixel, height=HEIGHT, width=WIDTH):
    info = ENCODINGS[encoding]
    return np.broadcast_to(np.asarray(pixel, dtype=info.dtype),
                           (height, width) + info.shape_suffix).copy()


# --------------------------------------------------------------------------- round trips


def test_required_encodings_are_supported():
    assert set(REQUIRED_ENCODINGS) <= set(SUPPORTED_ENCODINGS)
    assert ENCODINGS['rgb8'].bytes_per_pixel == 3
    assert ENCODINGS['bgra8'].bytes_per_pixel == 4
    assert ENCODINGS['mono16'].bytes_per_pixel == 2
    assert ENCODINGS['32FC1'].dtype == np.float32
    assert ENCODINGS['32SC1'].dtype == np.int32
    assert ENCODINGS['yuv422'].bytes_per_pixel == 2
    assert ENCODINGS['yuv422'].layout == 'uyvy' and ENCODINGS['yuv422_yuy2'].layout == 'yuyv'


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
@pytest.mark.parametrize('message_kind', ['ros', 'plain'])
def test_round_trip_every_encoding(encoding, message_kind):
    image_type = _ros_types()[0] if message_kind == 'ros' else None
    array = _random_array(encoding)
    msg = encode_image(array, encoding, image_msg_type=image_type)
    if message_kind == 'ros':
        assert type(msg).__name__ == 'Image'
    else:
        assert isinstance(msg, ImageMessage)
    assert msg.step == WIDTH * ENCODINGS[encoding].bytes_per_pixel
    assert len(msg.data) == HEIGHT * msg.step
    assert msg.is_bigendian == 0
    decoded = decode_image(msg)
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize('encoding', REQUIRED_ENCODINGS + ('rgb16', 'bayer_rggb16', '64FC2'))
@pytest.mark.parametrize('data_type', [bytes, bytearray, np.array, list])
def test_duck_typed_message_with_row_padding(encoding, data_type):
    array = _random_array(encoding, seed=1)
    msg = _duck(array, encoding, padding=5, data_type=data_type)
    np.testing.assert_array_equal(decode_image(msg), array)
    if rgb8_convertible(encoding):
        rgb = to_rgb8(msg)
        assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8


@pytest.mark.parametrize('encoding', ['mono16', '16UC1', '32SC1', '32FC1', 'rgb16', '16SC3',
                                      '64FC1'])
def test_big_endian_data_is_decoded_to_native_order(encoding):
    array = _random_array(encoding, seed=2)
    msg = _duck(array, encoding, padding=3, big_endian=True)
    decoded = decode_image(msg)
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, array)


def test_encoding_a_big_endian_array_sets_is_bigendian():
    array = (np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) * 300).astype('>u2')
    msg = encode_image(array, '16UC1')
    assert msg.is_bigendian == 1
    assert bytes(msg.data[:4]) == array.tobytes()[:4]
    np.testing.assert_array_equal(decode_image(msg), array)


def test_single_channel_array_with_trailing_axis_is_accepted():
    array = _random_array('mono8')
    msg = encode_image(array[:, :, None], 'mono8')
    np.testing.assert_array_equal(decode_image(msg), array)


def test_header_is_copied_into_ros_messages():
    image_type, compressed_type = _ros_types()
    from std_msgs.msg import Header
    header = Header(frame_id='camera_front')
    header.stamp.sec = 42
    msg = encode_image(_random_array('rgb8'), 'rgb8', header=header, image_msg_type=image_type)
    assert msg.header.frame_id == 'camera_front' and msg.header.stamp.sec == 42
    compressed = encode_compressed(_random_array('rgb8'), 'png', header=header,
                                   compressed_msg_type=compressed_type)
    assert compressed.header.frame_id == 'camera_front'


def test_rosbags_messages_decode_and_build():
    typesys = pytest.importorskip('rosbags.typesys')
    store = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    header = store.types['std_msgs/msg/Header'](
        stamp=store.types['builtin_interfaces/msg/Time'](sec=3, nanosec=4), frame_id='cam')
    array = _random_array('bgr8')
    built = encode_image(array, 'bgr8', header=header,
                         image_msg_type=store.types['sensor_msgs/msg/Image'])
    raw = store.serialize_cdr(built, 'sensor_msgs/msg/Image')
    parsed = store.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
    assert isinstance(parsed.data, np.ndarray) and parsed.header.frame_id == 'cam'
    decoded = decode_image(parsed)
    assert np.shares_memory(decoded, parsed.data)
    np.testing.assert_array_equal(decoded, array)
    np.testing.assert_array_equal(to_rgb8(parsed), array[:, :, ::-1])
    compressed = encode_compressed(_smooth_rgb(), 'png', header=header,
                                   compressed_msg_type=store.types['sensor_msgs/msg/CompressedImage'])
    parsed = store.deserialize_cdr(
        store.serialize_cdr(compressed, 'sensor_msgs/msg/CompressedImage'),
        'sensor_msgs/msg/CompressedImage')
    np.testing.assert_array_equal(decode_compressed(parsed), _smooth_rgb())


# --------------------------------------------------------------------------- zero copy


def test_decode_is_zero_copy_for_ros_message_with_padding():
    image_type = _ros_types()[0]
    array = _random_array('rgb8')
    padded = _duck(array, 'rgb8', padding=7)
    msg = image_type(height=padded.height, width=padded.width, encoding='rgb8',
                     is_bigendian=0, step=padded.step)
    msg.data = padded.data  # bytes -> array.array('B') inside rclpy
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    decoded = decode_image(msg)
    assert np.shares_memory(decoded, raw)
    assert np.shares_memory(to_rgb8(msg), raw)
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1', 'bgra8'])
def test_decode_is_zero_copy_for_native_byte_order(encoding):
    msg = encode_image(_random_array(encoding), encoding)
    assert np.shares_memory(decode_image(msg), np.frombuffer(msg.data, dtype=np.uint8))
    numpy_data = _duck(_random_array(encoding), encoding, padding=2, data_type=np.array)
    assert np.shares_memory(decode_image(numpy_data), numpy_data.data)


def test_non_native_byte_order_is_copied_not_viewed():
    foreign = '>' if sys.byteorder == 'little' else '<'
    msg = _duck(_random_array('16UC1'), '16UC1', big_endian=foreign == '>', data_type=bytearray)
    decoded = decode_image(msg)
    assert not np.shares_memory(decoded, np.frombuffer(msg.data, dtype=np.uint8))


# --------------------------------------------------------------------------- colours


@pytest.mark.parametrize('encoding, pixel, expected', [
    ('rgb8', (10, 20, 30), (10, 20, 30)),
    ('bgr8', (10, 20, 30), (30, 20, 10)),
    ('rgba8', (10, 20, 30, 40), (10, 20, 30)),
    ('bgra8', (10, 20, 30, 40), (30, 20, 10)),
    ('mono8', 77, (77, 77, 77)),
    ('8UC1', 77, (77, 77, 77)),
    ('8UC3', (10, 20, 30), (10, 20, 30)),
    ('8UC4', (10, 20, 30, 40), (10, 20, 30)),
    ('mono16', 65535, (255, 255, 255)),
    ('mono16', 257 * 100, (100, 100, 100)),
    ('16UC1', 257 * 9, (9, 9, 9)),
    ('rgb16', (0, 257 * 128, 65535), (0, 128, 255)),
    ('bgr16', (0, 257 * 128, 65535), (255, 128, 0)),
])
def test_uniform_colour_converts_to_expected_rgb(encoding, pixel, expected):
    rgb = to_rgb8(encode_image(_uniform(encoding, pixel), encoding))
    assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, np.broadcast_to(np.uint8(expected), rgb.shape))


def test_sixteen_bit_scaling_honours_bit_depth():
    samples = np.array([[0, 2048, 4095, 4096, 60000, 65535]], dtype=np.uint16)
    msg = encode_image(samples, 'mono16')
    np.testing.assert_array_equal(to_rgb8(msg, bit_depth=12)[0, :, 0], [0, 128, 255, 255, 255,
                                                                        255])
    np.testing.assert_array_equal(to_rgb8(msg)[0, :, 0], [0, 8, 16, 16, 233, 255])


def _bt601_yuv(rgb):
    """Limited-range BT.601 Y, U, V of an RGB triple (what cameras emit for yuv422)."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return [int(round(c)) for c in (y, u, v)]


@pytest.mark.parametrize('encoding', ['yuv422', 'yuv422_yuy2', 'uyvy', 'yuyv'])
@pytest.mark.parametrize('rgb', [(255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128),
                                 (200, 150, 40)])
def test_yuv422_uniform_colour(encoding, rgb):
    y, u, v = _bt601_yuv(rgb)
    packed = np.empty((HEIGHT, WIDTH, 2), dtype=np.uint8)
    chroma_axis = 0 if ENCODINGS[encoding].layout == 'uyvy' else 1  # UYVY: U Y V Y
    packed[:, :, 1 - chroma_axis] = y
    packed[:, 0::2, chroma_axis] = u
    packed[:, 1::2, chroma_axis] = v
    converted = to_rgb8(_duck(packed, encoding, padding=4))
    assert np.abs(converted.astype(int) - np.array(rgb)).max() <= 3


BAYER_OFFSETS = {  # (row, column) of R, and of B, in the 2x2 tile
    'rggb': ((0, 0), (1, 1)), 'bggr': ((1, 1), (0, 0)),
    'gbrg': ((1, 0), (0, 1)), 'grbg': ((0, 1), (1, 0))}


def _mosaic(rgb, pattern, height=8, width=10, dtype=np.uint8):
    red, blue = BAYER_OFFSETS[pattern]
    raw = np.full((height, width), rgb[1], dtype=dtype)
    raw[red[0]::2, red[1]::2] = rgb[0]
    raw[blue[0]::2, blue[1]::2] = rgb[2]
    return raw


@pytest.mark.parametrize('pattern', sorted(BAYER_OFFSETS))
def test_bayer_uniform_colour_demosaics_to_that_colour(pattern):
    colour = (200, 100, 30)
    rgb = to_rgb8(_duck(_mosaic(colour, pattern), f'bayer_{pattern}8', padding=2))
    interior = rgb[2:-2, 2:-2].reshape(-1, 3).astype(int)
    assert np.abs(interior - np.array(colour)).max() <= 1


@pytest.mark.parametrize('pattern', sorted(BAYER_OFFSETS))
def test_bayer16_is_demosaiced_then_scaled(pattern):
    colour = (65535, 257 * 100, 0)
    raw = _mosaic(colour, pattern, dtype=np.uint16)
    rgb = to_rgb8(_duck(raw, f'bayer_{pattern}16', big_endian=True))
    interior = rgb[2:-2, 2:-2].reshape(-1, 3).astype(int)
    assert np.abs(interior - np.array([255, 100, 0])).max() <= 1


@pytest.mark.parametrize('encoding', ['32FC1', '32SC1', '8SC1', '8UC2', '64FC3'])
def test_to_rgb8_rejects_encodings_without_rgb_meaning(encoding):
    msg = encode_image(_random_array(encoding), encoding)
    with pytest.raises(ImageDecodeError, match=f'{encoding} has no RGB interpretation.*mono8'):
        to_rgb8(msg)


@pytest.mark.parametrize('bit_depth', [0, 17, 12.0, True])
def test_to_rgb8_rejects_bad_bit_depth(bit_depth):
    with pytest.raises(ImageDecodeError, match='bit_depth must be an integer in 1..16'):
        to_rgb8(encode_image(_random_array('mono16'), 'mono16'), bit_depth=bit_depth)


# --------------------------------------------------------------------------- compressed


def _smooth_rgb(height=24, width=32):
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows * 255 // height, cols * 255 // width,
                     np.full_like(rows, 90)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize('message_kind', ['ros', 'plain'])
@pytest.mark.parametrize('codec', ['jpeg', 'png'])
def test_compressed_round_trip(codec, message_kind):
    compressed_type = _ros_types()[1] if message_kind == 'ros' else None
    rgb = _smooth_rgb()
    msg = encode_compressed(rgb, codec, compressed_msg_type=compressed_type)
    assert msg.format == f'rgb8; {codec} compressed bgr8'
    if message_kind == 'plain':
        assert isinstance(msg, CompressedImageMessage)
    decoded = decode_compressed(msg)
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(int) - rgb).mean()
    assert error == 0 if codec == 'png' else error < 3


@pytest.mark.parametrize('format_string', ['jpeg', 'JPEG', 'jpg', 'rgb8; jpeg compressed bgr8',
                                           'bgr8; jpeg compressed bgr8', ''])
def test_decode_compressed_accepts_format_spellings(format_string):
    rgb = _smooth_rgb()
    data = bytes(encode_compressed(rgb, 'jpeg').data)
    decoded = decode_compressed(SimpleNamespace(format=format_string, data=data))
    assert np.abs(decoded.astype(int) - rgb).mean() < 3


def test_compressed_bgr_and_mono_inputs():
    rgb = _smooth_rgb()
    from_bgr = decode_compressed(encode_compressed(rgb[:, :, ::-1], 'png', encoding='bgr8'))
    np.testing.assert_array_equal(from_bgr, rgb)
    grey = rgb[:, :, 0].copy()
    mono = encode_compressed(grey, 'png', encoding='mono8')
    assert mono.format == 'mono8; png compressed mono8'
    np.testing.assert_array_equal(decode_compressed(mono), np.repeat(grey[:, :, None], 3, 2))


# --------------------------------------------------------------------------- malformed


def _valid_duck(**changes):
    msg = _duck(_random_array('rgb8'), 'rgb8')
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize('changes, message', [
    ({'data': bytes(HEIGHT * WIDTH * 3 - 1)}, r'data length 71 != height \* step = 4 \* 18'),
    ({'data': bytes(HEIGHT * WIDTH * 3 + 18)}, r'data length 90 != height \* step'),
    ({'step': 17, 'data': bytes(68)}, r'step 17 is smaller than width \* bytes per pixel'),
    ({'encoding': 'rgb24'},
     r"unsupported image encoding 'rgb24'.*rgb8.*bayer_rggb8.*yuv422.*32FC1"),
    ({'encoding': 'RGB8'}, r"unsupported image encoding 'RGB8'"),
    ({'encoding': None}, r'unsupported image encoding None'),
    ({'width': 0, 'step': 0, 'data': b''}, r'image is empty: height=4, width=0'),
    ({'height': 0, 'data': b''}, r'image is empty: height=0, width=6'),
    ({'width': MAX_IMAGE_SIDE + 1}, r'exceeds the limit of 16384 pixels per side'),
    ({'height': MAX_IMAGE_SIDE, 'width': MAX_IMAGE_PIXELS // MAX_IMAGE_SIDE + 1},
     r'pixels exceeds the limit of'),
    ({'height': -4}, r'image height must be >= 0, got -4'),
    ({'height': 4.0}, r'image height must be an integer, got float'),
    ({'step': '18'}, r'image step must be an integer, got str'),
    ({'data': 'abc'}, r'image data must be bytes-like'),
    ({'data': np.zeros(18, dtype=np.float32)}, r'image data array must be 1-D uint8'),
    ({'data': np.zeros((4, 18), dtype=np.uint8)}, r'image data array must be 1-D uint8'),
    ({'data': [300] * 72}, r'image data list must hold integers in \[0, 255\]'),
    ({'data': memoryview(np.zeros(18, dtype=np.float32))}, r'contiguous byte buffer'),
])
def test_malformed_image_raises_image_decode_error(changes, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(_valid_duck(**changes))
    with pytest.raises(ImageDecodeError, match=message):
        to_rgb8(_valid_duck(**changes))


@pytest.mark.parametrize('encoding', ['yuv422', 'yuv422_yuy2'])
def test_odd_width_yuv422_is_rejected(encoding):
    msg = SimpleNamespace(height=2, width=5, encoding=encoding, is_bigendian=0, step=10,
                          data=bytes(20))
    with pytest.raises(ImageDecodeError, match='width must be even; got 5'):
        to_rgb8(msg)


def test_missing_field_is_named():
    msg = SimpleNamespace(height=1, width=1, encoding='mono8', is_bigendian=0, data=b'\0')
    with pytest.raises(ImageDecodeError, match="no field 'step'; expected a sensor_msgs/Image"):
        decode_image(msg)
    with pytest.raises(ImageDecodeError, match="no field 'format'"):
        decode_compressed(SimpleNamespace(data=b''))


def _png_bytes():
    return bytes(encode_compressed(_smooth_rgb(), 'png').data)


def _jpeg_bytes():
    return bytes(encode_compressed(_smooth_rgb(), 'jpeg').data)


def _with_png_size(data, width, height):
    # The IHDR CRC is left stale: the size check must fire before any decoding.
    return data[:16] + width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + data[24:]


@pytest.mark.parametrize('format_string, data_factory, message', [
    ('jpeg', lambda: b'', 'neither JPEG nor PNG'),
    ('jpeg', lambda: b'hello world, not an image', 'neither JPEG nor PNG'),
    ('jpeg', lambda: _jpeg_bytes()[:20], 'JPEG data is truncated or has no frame'),
    ('jpeg', lambda: _jpeg_bytes()[:len(_jpeg_bytes()) // 2], 'JPEG data .* is truncated'),
    ('png', lambda: _png_bytes()[:20], 'PNG data is truncated'),
    ('png', lambda: _png_bytes()[:60] + bytes(b ^ 0x55 for b in _png_bytes()[60:]),
     'png data .* could not be decoded'),
    ('png', lambda: _with_png_size(_png_bytes(), 100000, 10), 'exceeds the limit of 16384'),
    ('png', lambda: _with_png_size(_png_bytes(), 0, 10), 'image is empty'),
    ('png', _jpeg_bytes, 'format says png but the data is jpeg'),
    ('tiff', _png_bytes, "cannot tell the codec from CompressedImage format 'tiff'"),
    ('h264', _png_bytes, "supported: 'jpeg', 'png'"),
    ('16UC1; compressedDepth png', _png_bytes, 'compressedDepth images are not supported'),
    (None, _png_bytes, 'format must be a string'),
])
def test_malformed_compressed_raises_image_decode_error(format_string, data_factory, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_compressed(SimpleNamespace(format=format_string, data=data_factory()))


@pytest.mark.parametrize('array, encoding, message', [
    (np.zeros((4, 6, 3)), 'rgb8', r'rgb8 needs dtype uint8, got float64'),
    (np.zeros((4, 6), dtype=np.uint8), 'rgb8', r'rgb8 needs an array of shape \(H, W, 3\)'),
    (np.zeros((4, 6, 4), dtype=np.uint8), 'rgb8', r'got shape \(4, 6, 4\)'),
    (np.zeros((4, 6, 3), dtype=np.uint8), 'mono8', r'mono8 needs an array of shape \(H, W\)'),
    (np.zeros((4, 6), dtype=np.int32), '16UC1', r'16UC1 needs dtype uint16, got int32'),
    (np.zeros(6, dtype=np.uint8), 'mono8', r'got shape \(6,\)'),
    (np.zeros((0, 6, 3), dtype=np.uint8), 'rgb8', r'image is empty'),
    (np.zeros((2, 5, 2), dtype=np.uint8), 'yuv422', r'yuv422 needs an even width, got 5'),
    (np.zeros((4, 6, 3), dtype=np.uint8), 'rgb9', r"unsupported image encoding 'rgb9'"),
    ([[1, 2], [3, 4]], 'mono8', r'image must be a numpy array, got list'),
])
def test_encode_image_rejects_bad_arrays(array, encoding, message):
    with pytest.raises(ImageDecodeError, match=message):
        encode_image(array, encoding)


@pytest.mark.parametrize('kwargs, message', [
    ({'codec': 'webp'}, "unsupported codec 'webp'; choose jpeg or png"),
    ({'encoding': 'rgba8'}, 'encode_compressed takes rgb8, bgr8 or mono8'),
    ({'jpeg_quality': 0}, 'jpeg_quality must be an integer in 1..100'),
    ({'codec': 'png', 'png_compression': 10}, 'png_compression must be an integer in 0..9'),
])
def test_encode_compressed_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ImageDecodeError, match=message):
        encode_compressed(_smooth_rgb(), **kwargs)


def test_encode_compressed_rejects_bad_array():
    with pytest.raises(ImageDecodeError, match='rgb8 needs dtype uint8, got float32'):
        encode_compressed(_smooth_rgb().astype(np.float32), 'jpeg')


def test_ros_message_type_rejecting_fields_is_reported():
    class Strict:
        def __init__(self, height):
            pass

    with pytest.raises(ImageDecodeError, match="could not build 'Strict'"):
        encode_image(_random_array('mono8'), 'mono8', image_msg_type=Strict)


def test_import_pulls_in_neither_ros_nor_opencv():
    code = ('import sys, seg_perception.images.raw, seg_perception.images.compressed; '
            'heavy = [m for m in ("rclpy", "sensor_msgs", "cv2", "torch") if m in sys.modules]; '
            'assert not heavy, heavy')
    subprocess.run([sys.executable, '-c', code], check=True)
