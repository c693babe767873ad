"""The TensorRT backend from several threads, on the TensorRT / cuda-python stand-ins.

The stand-in execution context refuses to run from a thread other than its creator's (a
real one is not thread-safe) and its GPU does queued copies only at a stream sync, so these
tests fail if threads share a context, a stream or buffers, or if a result is read before
the sync. test_tensorrt.py runs the same check on real TensorRT where it exists.
"""

import os

from concurrency import run_concurrently
import fake_tensorrt
import numpy as np
import pytest

from seg_perception.manifest import ModelManifest
from seg_perception.runtime.base import BackendError
from seg_perception.runtime.tensorrt_backend import TensorRTBackend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, 'seg_perception', 'zoo', 'enet_panoptic')
THREADS = 4


@pytest.fixture
def backend(monkeypatch, tmp_path):
    cudart = fake_tensorrt.install(monkeypatch).cudart
    created = TensorRTBackend(ModelManifest.load(PACKAGE), PACKAGE, progress=lambda _: None,
                              engine_path=str(tmp_path / 'model.engine'))
    yield created, cudart
    created.close()


def _image(manifest, columns):
    images = np.zeros((1, 3, manifest.input_height, manifest.input_width), np.float32)
    images[:, 0, :, :columns] = 255.0
    return images


def test_each_thread_runs_its_own_context_on_its_own_data(backend):
    trt, cudart = backend
    manifest = trt.manifest

    def work(index):
        images = _image(manifest, 100 * (index + 1))
        return [trt.run(images, 0.1)['semantic'] for _ in range(3)]

    results, errors = run_concurrently(work, THREADS)
    assert not errors, errors
    assert sorted(results) == list(range(THREADS)) and len(trt._states) == THREADS
    for index, runs in results.items():
        for semantic in runs:
            assert semantic[0, :, :100 * (index + 1)].all()
            assert not semantic[0, :, 100 * (index + 1):].any()
    trt.close()
    assert not cudart.device_memory and not cudart.host_memory and not cudart.streams


def test_the_thread_check_fails_when_threads_share_a_context(backend, monkeypatch):
    """The check has teeth: one shared state (context, stream, buffers) for all threads
    is caught as an error of the other threads."""
    trt, _ = backend
    images = _image(trt.manifest, 10)
    trt.run(images, 0.1)
    shared = trt._states[0]
    monkeypatch.setattr(trt, '_thread_state', lambda: shared)
    results, errors = run_concurrently(lambda index: trt.run(images, 0.1), THREADS)
    assert len(errors) == THREADS and all(isinstance(e, BackendError) for e in errors)
    assert 'failed to enqueue' in str(errors[0]) and not results


def test_an_error_in_a_worker_thread_reaches_the_test(backend):
    trt, _ = backend
    results, errors = run_concurrently(
        lambda index: trt.run(np.zeros((1, 3, 8, 8), np.float32), 0.1), 2)
    assert not results and len(errors) == 2 and 'images must be float32' in str(errors[0])
