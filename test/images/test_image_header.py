"""Image sizes read from headers before decoding; cut-short and corrupt JPEGs refused.

The node refuses a frame by the size its header declares (images/header_size.py), so a PNG
bomb must never reach a decoder: these tests make OpenCV's decoder fail loudly if it is
called.
"""

from types import SimpleNamespace

from image_bombs import (
    camera_jpeg,
    jpeg_extraneous_scan_bytes,
    jpeg_missing_scan_data,
    png_bomb,
    truncated_jpeg,
)
import numpy as np
import pytest

from seg_perception.images.compressed import (
    CompressedHeader,
    decode_compressed,
    encode_compressed,
    read_compressed_header,
)
from seg_perception.images.header_size import declared_size
from seg_perception.images.libjpeg_warnings import call_with_libjpeg_warnings
from seg_perception.images.raw import encode_image, ImageDecodeError

cv2 = pytest.importorskip('cv2')


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('cv2.imdecode was called')
    monkeypatch.setattr(cv2, 'imdecode', refuse)


@pytest.fixture(scope='module')
def bomb():
    return png_bomb(16384, 8192)


def test_png_bomb_size_is_read_from_its_header_without_decoding(bomb, no_decoding):
    assert len(bomb) < 64 * 1024
    message = SimpleNamespace(format='png', data=bomb)
    assert read_compressed_header(message) == CompressedHeader('png', 8192, 16384)
    assert declared_size(message, compressed=True) == (8192, 16384)


def test_jpeg_and_raw_sizes_without_decoding(no_decoding):
    jpeg = SimpleNamespace(format='rgb8; jpeg compressed bgr8', data=camera_jpeg(256, 512))
    assert read_compressed_header(jpeg) == CompressedHeader('jpeg', 256, 512)
    raw = encode_image(np.zeros((30, 40, 3), np.uint8), 'bgr8')
    assert declared_size(raw, compressed=False) == (30, 40)


@pytest.mark.parametrize('compressed, message, error', [
    (True, SimpleNamespace(format='png', data=png_bomb(16384 + 8, 8)),
     'exceeds the limit of 16384 pixels per side'),
    (True, SimpleNamespace(format='png', data=b'\x89PNG\r\n\x1a\n'), 'PNG data is truncated'),
    (False, encode_image(np.zeros((2, 3), np.float32), '32FC1'), 'has no RGB interpretation'),
    (False, SimpleNamespace(height=0, width=5, step=15, encoding='rgb8', is_bigendian=0,
                            data=b''), 'image is empty'),
    (False, SimpleNamespace(height=2, width=5, step=15, encoding='rgb8', is_bigendian=0,
                            data=bytes(29)), 'data length 29 != height'),
])
def test_declared_size_refuses_bad_headers(compressed, message, error, no_decoding):
    with pytest.raises(ImageDecodeError, match=error):
        declared_size(message, compressed)


@pytest.mark.parametrize('damage, error', [
    (truncated_jpeg, r'is truncated: it does not end with the end-of-image marker'),
    (jpeg_missing_scan_data,
     r'is corrupt: libjpeg: Corrupt JPEG data: premature end of data segment'),
    (jpeg_extraneous_scan_bytes,
     r'is corrupt: libjpeg: Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9'),
])
def test_cut_short_or_corrupt_jpeg_is_refused(damage, error):
    jpeg = camera_jpeg()
    assert decode_compressed(SimpleNamespace(format='jpeg', data=jpeg)).shape == (256, 512, 3)
    with pytest.raises(ImageDecodeError, match=error):
        decode_compressed(SimpleNamespace(format='jpeg', data=damage(jpeg)))


def test_padding_after_the_end_of_image_marker_is_allowed():
    rgb = np.full((16, 24, 3), 90, np.uint8)
    data = bytes(encode_compressed(rgb, 'jpeg').data)
    for padded in (data + bytes(13), data + b'\xff' * 3):
        decoded = decode_compressed(SimpleNamespace(format='jpeg', data=padded))
        assert np.abs(decoded.astype(int) - 90).max() <= 2


def test_libjpeg_warnings_are_caught_and_other_stderr_text_is_kept(capfd):
    import os

    def noisy():
        os.write(2, b'another thread logs this\n')
        os.write(2, b'Corrupt JPEG data: bad Huffman code\n')
        return 7

    assert call_with_libjpeg_warnings(noisy) == (7, ['Corrupt JPEG data: bad Huffman code'])
    assert capfd.readouterr().err == 'another thread logs this\n'
    buffer = np.frombuffer(camera_jpeg(), np.uint8)
    image, warnings = call_with_libjpeg_warnings(lambda: cv2.imdecode(buffer, cv2.IMREAD_COLOR))
    assert image.shape == (256, 512, 3) and warnings == []
