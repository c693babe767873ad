"""INT8 calibration failures are never swallowed (TensorRT's wrapper reads them as "no more
data"), and a short calibration is never cached. Runs on the TensorRT / cuda-python
stand-ins, which drive the calibrator the way TensorRT's Python wrapper does."""

import os

import fake_tensorrt
import numpy as np
import pytest

from seg_perception.manifest import ModelManifest
from seg_perception.runtime import calibration
from seg_perception.runtime.base import BackendError
from seg_perception.runtime.calibration import calibration_set_sha256, CalibrationError
from seg_perception.runtime.tensorrt_backend import TensorRTBackend

cv2 = pytest.importorskip('cv2')
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, 'seg_perception', 'zoo', 'enet_panoptic')


@pytest.fixture
def trt(monkeypatch):
    return fake_tensorrt.install(monkeypatch)


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for index, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        image = np.zeros((24, 32, 3), np.uint8)
        image[:] = colour
        assert cv2.imwrite(str(folder / f'frame{index}.png'), image)
    return folder


def _build(tmp_path, frames, name='model.int8.engine', **options):
    lines = []
    backend = TensorRTBackend(ModelManifest.load(PACKAGE), PACKAGE, precision='int8',
                              calib_images_dir=str(frames), build_only=True,
                              engine_path=str(tmp_path / name), progress=lines.append,
                              **options)
    return backend, lines


def _leftovers(tmp_path):
    return sorted(n for n in os.listdir(tmp_path) if n.endswith(('.engine', '.json', '.calib')))


def test_complete_calibration_is_cached_and_reused(trt, tmp_path, frames):
    backend, lines = _build(tmp_path, frames)
    assert trt.builds[-1]['batches'] == 3
    assert any('INT8 calibration batch 3/3' in line for line in lines)
    calib = [n for n in _leftovers(tmp_path) if n.endswith('.calib')]
    assert len(calib) == 1 and backend.key.calibration_sha256[:12] in calib[0]
    _, lines = _build(tmp_path, frames, force_rebuild=True)
    assert trt.builds[-1]['batches'] == 0          # scales read from the cache
    assert any(line.startswith('using INT8 calibration cache') for line in lines)


def test_an_unreadable_image_stops_before_the_build(trt, tmp_path, frames):
    (frames / 'frame1.png').write_bytes(b'\x89PNG truncated')
    with pytest.raises(CalibrationError, match='frame1.png cannot be read'):
        _build(tmp_path, frames)
    assert trt.builds == [] and _leftovers(tmp_path) == []


def test_an_error_during_calibration_is_raised_after_the_build(trt, tmp_path, frames,
                                                               monkeypatch):
    """The image turns bad after the check (or the GPU runs out of memory): TensorRT would
    build from one batch of three; the error comes back, nothing is kept or cached."""
    real = calibration.read_rgb_image
    seen = []

    def flaky(path):
        seen.append(path)
        if len(seen) == 5:                         # 3 checked, then batch 2 of calibration
            raise CalibrationError(f'calibration image {path} cannot be read (changed)')
        return real(path)

    monkeypatch.setattr(calibration, 'read_rgb_image', flaky)
    with pytest.raises(BackendError, match=r'INT8 calibration failed at batch 2 of 3: '
                                           r'calibration image .*frame1.png cannot be read'):
        _build(tmp_path, frames)
    assert trt.builds[-1]['batches'] == 1          # what TensorRT alone would have used
    assert _leftovers(tmp_path) == []


def test_ctrl_c_during_calibration_is_not_swallowed(trt, tmp_path, frames, monkeypatch):
    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(calibration, 'check_calibration_images', lambda *args: 3)
    monkeypatch.setattr(calibration, 'read_rgb_image', interrupted)
    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path, frames)
    assert _leftovers(tmp_path) == []


def test_the_set_digest_covers_the_images_used(frames):
    first = calibration_set_sha256(str(frames), max_images=2)
    cv2.imwrite(str(frames / 'frame2.png'), np.full((8, 8, 3), 7, np.uint8))
    assert calibration_set_sha256(str(frames), max_images=2) == first
    assert calibration_set_sha256(str(frames)) != first
    with pytest.raises(CalibrationError, match='max_images must be positive'):
        calibration_set_sha256(str(frames), max_images=0)
