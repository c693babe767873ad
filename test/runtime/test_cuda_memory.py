"""cuda-python helpers without a GPU: every way cuda-python fails here becomes a reason.

``fake_cuda.FakeCudart`` answers like the real releases do on a machine without a driver
(11.8-12.8 raise ``RuntimeError``, 12.9+ return ``cudaErrorInsufficientDriver``) or with a
working host-memory "GPU". Where cuda-python itself is installed and no driver is, the real
module is checked too.
"""

import importlib.util
import types

import fake_cuda
import numpy as np
import pytest

from seg_perception import cli
from seg_perception.runtime import cuda_memory
from seg_perception.runtime.base import BackendError, BackendUnavailable
from seg_perception.runtime.cuda_memory import CudaDriverUnavailable
from seg_perception.runtime.tensorrt_backend import tensorrt_available
from seg_perception.tools import doctor


@pytest.fixture
def fake_tensorrt_module(monkeypatch):
    """An importable ``tensorrt`` (only its version matters before the driver is asked)."""
    module = types.ModuleType('tensorrt')
    module.__version__ = '10.3.0'
    monkeypatch.setitem(__import__('sys').modules, 'tensorrt', module)
    return module


@pytest.mark.parametrize('mode, expected', [
    ('raise', 'cuda-python 12.6.2.post1 cannot load the CUDA driver libcuda.so.1 (Failed to '
              'dlopen libcuda.so.1): no NVIDIA driver here, or a container started without '
              'the NVIDIA runtime'),
    ('no_driver', 'cudaErrorInsufficientDriver (CUDA driver version is insufficient for CUDA '
                  'runtime version); cuda-python 12.6.2.post1 (CUDA 12.9 runtime) finds no '
                  'CUDA driver'),
    ('old_driver', 'the driver supports CUDA 12.2, older than cuda-python 12.6.2.post1 (CUDA '
                   '12.9 runtime): install a cuda-python for CUDA <= 12.2'),
])
def test_driver_failures_are_unavailable_with_the_reason(monkeypatch, fake_tensorrt_module,
                                                         mode, expected):
    fake_cuda.install(monkeypatch, fake_cuda.FakeCudart(mode, driver=12020, runtime=12090))
    with pytest.raises(CudaDriverUnavailable) as raised:
        cuda_memory.device_count()
    assert expected in str(raised.value)
    assert isinstance(raised.value, BackendUnavailable)
    assert '\n' not in str(raised.value)
    # Later calls (cuda-python 12.6: 'Function "cuInit" not found') say the same.
    with pytest.raises(CudaDriverUnavailable, match='no NVIDIA driver|CUDA'):
        cuda_memory.set_device(0)
    available, reason = tensorrt_available()
    assert available is False
    assert reason.startswith('CUDA driver not usable: cudaGetDeviceCount')


def test_doctor_and_build_engine_explain_instead_of_crashing(monkeypatch, capsys,
                                                             fake_tensorrt_module, tmp_path):
    fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('raise'))
    checks = {check.name: check for check in doctor.collect_checks()}
    assert not checks['cuda-python'].ok and 'libcuda.so.1' in checks['cuda-python'].detail
    assert not checks['TensorRT'].ok and 'CUDA driver not usable' in checks['TensorRT'].detail
    choice = doctor.describe_auto_choice()
    assert choice.backend != 'tensorrt'
    assert choice.skipped[0].startswith('tensorrt: CUDA driver not usable')
    assert cli.main(['doctor']) == 0
    assert cli.main(['build-engine', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'TensorRT cannot be used on this machine: CUDA driver not usable' in err


def test_backend_auto_falls_back_without_a_driver(monkeypatch, fake_tensorrt_module,
                                                  exported_package):
    from seg_perception.manifest import ModelManifest
    from seg_perception.runtime.select import create_backend
    package = exported_package('enet', 'semantic')
    fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('no_driver'))
    backend, reason = create_backend(package, ModelManifest.load(package), device='auto')
    backend.close()
    assert backend.info.name != 'tensorrt'
    assert reason.startswith('tensorrt: CUDA driver not usable')


def test_working_driver_round_trip_and_properties(monkeypatch):
    fake = fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('ok', devices=2,
                                                                multiprocessors=16))
    assert cuda_memory.device_count() == 2
    gpu = cuda_memory.gpu_properties(1)
    assert (gpu.name, gpu.compute_capability_text, gpu.multiprocessors, gpu.memory_gib) == \
        ('Orin', '8.7', 16, 7)
    cuda_memory.set_device(1)
    assert fake.current_device() == 1
    stream = cuda_memory.CudaStream()
    source = cuda_memory.PinnedArray((2, 3, 5), np.float32)
    target = cuda_memory.PinnedArray((2, 3, 5), np.float32)
    device = cuda_memory.DeviceBuffer(source.nbytes)
    source.array[...] = np.arange(30, dtype=np.float32).reshape(2, 3, 5)
    target.array[...] = -1
    cuda_memory.copy_to_device_async(device, source, stream)
    cuda_memory.copy_to_host_async(target, device, stream)
    assert (target.array == -1).all()          # queued, not done before the sync
    stream.synchronize()
    np.testing.assert_array_equal(target.array, source.array)
    cuda_memory.copy_array_to_device(device, np.zeros((2, 3, 5), np.float32))
    cuda_memory.copy_to_host_async(target, device, stream)
    stream.synchronize()
    assert (target.array == 0).all()
    with pytest.raises(BackendError, match='size mismatch'):
        cuda_memory.copy_array_to_device(device, np.zeros(3, np.float32))
    for item in (device, source, target, stream):
        item.close()
        item.close()                            # idempotent
    assert not fake.device_memory and not fake.host_memory and not fake.streams
    with pytest.raises(BackendError, match='after close'):
        device.pointer


def test_cuda_errors_name_the_operation_and_cuda_text(monkeypatch):
    fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('ok'))
    with pytest.raises(BackendError, match=r'cudaMalloc of 1048576\.0 MiB failed: '
                                           r'cudaErrorMemoryAllocation \(out of memory\)'):
        cuda_memory.DeviceBuffer(1 << 40)
    with pytest.raises(BackendError, match=r'cudaSetDevice\(3\) failed: '
                                           'cudaErrorInvalidDevice') as raised:
        cuda_memory.set_device(3)
    assert not isinstance(raised.value, BackendUnavailable)   # a real error, not "no GPU"


def _real_cuda_python_reason():
    if importlib.util.find_spec('cuda') is None:
        return 'cuda-python is not installed'
    try:
        cuda_memory.device_count()
    except CudaDriverUnavailable:
        return None
    except BackendError as error:
        return f'cuda-python fails otherwise here: {error}'
    return 'a CUDA driver is present here'


@pytest.mark.skipif(_real_cuda_python_reason() is not None,
                    reason=f'needs cuda-python without a driver: {_real_cuda_python_reason()}')
def test_real_cuda_python_without_a_driver_is_a_reason():
    with pytest.raises(CudaDriverUnavailable, match='CUDA driver|libcuda'):
        cuda_memory.device_count()
    with pytest.raises(CudaDriverUnavailable):
        cuda_memory.DeviceBuffer(16)
    check = doctor.check_cuda_python()
    assert not check.ok and cuda_memory.cuda_python_version() in check.detail
