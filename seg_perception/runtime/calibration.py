"""INT8 calibration: a folder of images -> batches the network sees -> TensorRT calibrator.

The image loader is TensorRT-free: it reads PNG/JPEG files with OpenCV, converts BGR to RGB
and preprocesses with the Segmenter's own ``Preprocessor`` (resize to the network size,
float32 CHW 0..255), so calibration statistics match what the engine sees at run time.

The entropy calibrator class is defined inside ``make_entropy_calibrator`` because it
subclasses ``tensorrt.IInt8EntropyCalibrator2``, which exists only where TensorRT does.
TensorRT 11 removed implicit INT8 calibration (it needs Q/DQ nodes in the ONNX instead).

TensorRT's Python wrapper catches every exception raised in ``get_batch`` and reads it as
"no more data": calibration would end early and its partial scales be cached as if complete.
So every image is decoded once before the build (a bad one stops it at once, named), the
calibrator keeps any exception (Ctrl-C included) for ``raise_if_failed`` after the build, and
it writes a calibration cache only after every batch went through. The images are decoded
again while calibrating rather than held: hundreds of network-size frames would take
gigabytes of an 8 GB Jetson in the middle of a build.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Iterator, List, Optional

import numpy as np

from .base import BackendError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')


class CalibrationError(ValueError):
    """The calibration image folder is missing, empty or holds an unreadable image."""


def list_calibration_images(directory: str) -> List[str]:
    """Sorted paths of the images (``IMAGE_EXTENSIONS``, any case) directly in ``directory``."""
    if not os.path.isdir(directory):
        raise CalibrationError(f'calibration image folder {directory} does not exist or is not a '
                               'directory')
    paths = sorted(os.path.join(directory, name) for name in os.listdir(directory)
                   if name.lower().endswith(IMAGE_EXTENSIONS)
                   and os.path.isfile(os.path.join(directory, name)))
    if not paths:
        raise CalibrationError(
            f'calibration image folder {directory} holds no images '
            f'({", ".join(IMAGE_EXTENSIONS)}); INT8 calibration needs a few hundred '
            'representative camera frames')
    return paths


def calibration_images(directory: str, max_images: Optional[int] = None) -> List[str]:
    """The images calibration uses: the first ``max_images`` in name order (all if None)."""
    paths = list_calibration_images(directory)
    if max_images is not None:
        if max_images <= 0:
            raise CalibrationError(f'max_images must be positive, got {max_images}')
        paths = paths[:max_images]
    return paths


def calibration_set_sha256(directory: str, max_images: Optional[int] = None) -> str:
    """Digest of the images calibration uses (names and contents): part of the engine key."""
    digest = hashlib.sha256()
    for path in calibration_images(directory, max_images):
        digest.update(os.path.basename(path).encode('utf-8') + b'\0')
        with open(path, 'rb') as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b''):
                digest.update(chunk)
    return digest.hexdigest()


def read_rgb_image(path: str) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB; raises ``CalibrationError`` if unreadable."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise CalibrationError(f'calibration image {path} cannot be read (corrupt or not an '
                               'image OpenCV can decode)')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def calibration_batches(directory: str, batch: int, height: int, width: int,
                        max_images: Optional[int] = None) -> Iterator[np.ndarray]:
    """Yield the calibration set as network input batches.

    Args:
        directory: Folder of PNG/JPEG images of any size.
        batch: Batch size B of the engine.
        height, width: Network input size.
        max_images: Use at most this many images (the first ones in name order).

    Yields:
        float32 (B, 3, height, width) RGB 0..255 arrays (fresh copies). The last batch is
        filled up with images from the start of the set, since TensorRT calibrates with
        full batches only.

    Raises:
        CalibrationError: Missing/empty folder or an unreadable image (named).
    """
    from ..images.preprocess import Preprocessor
    paths = calibration_images(directory, max_images)
    preprocessor = Preprocessor(batch, height, width)
    count = -(-len(paths) // batch) * batch
    for index in range(count):
        preprocessor.load(index % batch, read_rgb_image(paths[index % len(paths)]))
        if index % batch == batch - 1:
            yield preprocessor.buffer.copy()


def check_calibration_images(directory: str, max_images: Optional[int] = None,
                             log: Callable[[str], None] = print) -> int:
    """Decode every calibration image once, before a build; returns how many there are.

    Raises:
        CalibrationError: Missing / empty folder or an image that does not decode (named).
    """
    paths = calibration_images(directory, max_images)
    log(f'checking {len(paths)} INT8 calibration image(s) in {directory}')
    for path in paths:
        read_rgb_image(path)
    return len(paths)


def calibration_cache_path(engine_path: str, calibration_sha256: str) -> str:
    """``model.int8.b1.engine`` -> ``model.int8.b1.<set digest[:12]>.calib`` (same folder).

    The calibration set's digest is in the name so a changed set never reuses stale scales.
    """
    stem = engine_path[:-len('.engine')] if engine_path.endswith('.engine') else engine_path
    return f'{stem}.{calibration_sha256[:12]}.calib'


def make_entropy_calibrator(batches: Callable[[], Iterator[np.ndarray]], batch: int,
                            cache_path: str, extra_inputs: Optional[dict] = None,
                            log: Callable[[str], None] = print,
                            expected_batches: Optional[int] = None) -> Any:
    """Create a ``tensorrt.IInt8EntropyCalibrator2`` fed by ``batches``.

    After the build call its ``raise_if_failed()``: it re-raises what ``get_batch`` met
    (TensorRT swallowed it) and ``close()`` frees its device buffers.

    Args:
        batches: Returns a fresh iterator of float32 (B, 3, H, W) batches for input
            ``image`` (``calibration_batches`` with its arguments bound).
        batch: B.
        cache_path: Calibration cache file; read if present, written atomically after a
            calibration that used every batch (never after a short one).
        extra_inputs: Constant values for the other graph inputs, by name
            (``{'center_threshold': np.array([0.1], np.float32)}`` for panoptic graphs).
        log: Progress messages.
        expected_batches: How many batches ``batches`` yields (None: no completeness check).

    Raises:
        BackendUnavailable: TensorRT or cuda-python is missing.
    """
    from ..packages.atomic import atomic_write_bytes
    from . import cuda_memory
    from .engine_options import import_tensorrt

    trt = import_tensorrt()
    cuda_memory.load_cudart()

    if not hasattr(trt, 'IInt8EntropyCalibrator2'):
        raise BackendError(f'TensorRT {trt.__version__} has no implicit INT8 calibration; '
                           'quantize the ONNX with Q/DQ nodes (NVIDIA ModelOpt) instead')

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """Copies each calibration batch to the GPU and hands TensorRT the addresses."""

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._iterator: Optional[Iterator[np.ndarray]] = None
            self._buffers = {}
            self.count = 0
            self.error: Optional[BaseException] = None

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            if self.error is not None:
                return None
            try:
                return self._next_batch(names)
            except BaseException as error:  # noqa: BLE001 - TensorRT would swallow it
                self.error = error
                log(f'INT8 calibration stopped at batch {self.count + 1}: {error}')
                return None

        def _next_batch(self, names: List[str]) -> Optional[List[int]]:
            if self._iterator is None:
                self._iterator = batches()
            try:
                images = next(self._iterator)
            except StopIteration:
                return None
            pointers = _upload(names, {**(extra_inputs or {}), 'image': images},
                               self._buffers)
            self.count += 1
            log(f'INT8 calibration batch {self.count}/{expected_batches or "?"}')
            return pointers

        @property
        def complete(self) -> bool:
            return self.error is None and (expected_batches is None
                                           or self.count == expected_batches)

        def read_calibration_cache(self) -> Optional[bytes]:
            if os.path.isfile(cache_path):
                log(f'using INT8 calibration cache {cache_path}')
                with open(cache_path, 'rb') as stream:
                    return stream.read()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if not self.complete:
                log(f'not writing the INT8 calibration cache: calibration used {self.count} '
                    f'of {expected_batches} batch(es)')
                return
            atomic_write_bytes(cache_path, bytes(memoryview(cache)))
            log(f'wrote INT8 calibration cache {cache_path}')

        def raise_if_failed(self) -> None:
            """Re-raise what stopped calibration (the engine built from it is not kept)."""
            if self.error is None:
                return
            if not isinstance(self.error, Exception):  # KeyboardInterrupt, SystemExit
                raise self.error
            of = f' of {expected_batches}' if expected_batches else ''
            raise BackendError(f'INT8 calibration failed at batch {self.count + 1}{of}: '
                               f'{self.error}') from self.error

        def close(self) -> None:
            for buffer in self._buffers.values():
                buffer.close()
            self._buffers = {}

    return EntropyCalibrator()


def _upload(names: List[str], values: dict, buffers: dict) -> List[int]:
    """Copy each named input to its device buffer (made on first use); their addresses."""
    from . import cuda_memory
    pointers = []
    for name in names:
        if name not in values:
            raise BackendError(f'calibration has no data for graph input {name!r}')
        data = np.ascontiguousarray(values[name])
        if name not in buffers:
            buffers[name] = cuda_memory.DeviceBuffer(data.nbytes)
        cuda_memory.copy_array_to_device(buffers[name], data)
        pointers.append(buffers[name].pointer)
    return pointers
