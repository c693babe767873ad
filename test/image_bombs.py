"""Hostile compressed images for tests: a PNG decompression bomb, cut-short and corrupt JPEGs."""

import struct
import zlib

import numpy as np


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_bomb(width: int = 16384, height: int = 8192) -> bytes:
    """A valid all-black 1-bit greyscale PNG of ``width`` x ``height`` (width a multiple of 8).

    About 16 KB for 16384 x 8192; decoded as colour it is 16384 * 8192 * 3 bytes (384 MiB),
    and segmenting it at that size costs gigabytes more. Written row by row, so making it
    never holds the image.
    """
    row = bytes(1 + width // 8)  # filter byte 0, then the row's bits
    compressor = zlib.compressobj(9)
    rows_per_block = 512
    idat = b''.join(compressor.compress(row * rows_per_block)
                    for _ in range(height // rows_per_block))
    idat += compressor.compress(row * (height % rows_per_block)) + compressor.flush()
    header = struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', header) + _chunk(b'IDAT', idat)
            + _chunk(b'IEND', b''))


def camera_jpeg(height: int = 256, width: int = 512, seed: int = 4) -> bytes:
    """A smooth colour JPEG (blocks of 16 x 16 pixels, linearly interpolated)."""
    import cv2
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def scan_start(jpeg: bytes) -> int:
    """Offset of the first byte of entropy-coded data (after the SOS segment)."""
    sos = jpeg.index(b'\xff\xda')
    return sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], 'big')


def truncated_jpeg(jpeg: bytes) -> bytes:
    """The first half of ``jpeg``: a transfer cut short (no end-of-image marker)."""
    return jpeg[:len(jpeg) // 2]


def jpeg_missing_scan_data(jpeg: bytes) -> bytes:
    """``jpeg`` with the middle third of its scan data cut out; markers and EOI intact."""
    start = scan_start(jpeg)
    third = (len(jpeg) - 2 - start) // 3
    return jpeg[:start + third] + jpeg[start + 2 * third:]


def jpeg_extraneous_scan_bytes(jpeg: bytes) -> bytes:
    """``jpeg`` with 40 bytes of noise (no 0xFF) between its scan data and the EOI marker."""
    noise = np.random.default_rng(0).integers(0, 255, 40, dtype=np.uint8).tobytes()
    return jpeg[:-2] + noise + jpeg[-2:]
