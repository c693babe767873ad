"""CUDA device buffers, pinned host arrays and streams through cuda-python's runtime API.

Every cuda-python call returns a tuple whose first element is a ``cudaError_t``; ``cuda_call``
checks it and raises ``BackendError`` naming the operation and CUDA's own error text. No
pycuda, no implicit context: the runtime API uses the device's primary context, made
current per thread by ``set_device`` (call it in every thread that touches these objects).

Without a usable driver, cuda-python 11.8-12.8 *raise* ``RuntimeError('Failed to dlopen
libcuda.so.1')`` (later calls: ``Function "cuInit" not found``) while 12.9 and 13.x return
``cudaErrorInsufficientDriver``; a driver older than cuda-python's CUDA runtime returns that
code too. Both become ``CudaDriverUnavailable`` (a ``BackendUnavailable``) with the reason
and the cuda-python to install, so ``backend: auto`` moves on and ``doctor`` explains.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .base import BackendError, BackendUnavailable

#: ``cudaError_t`` names meaning "no usable driver or GPU here", not "this call failed".
DRIVER_ERRORS = ('cudaErrorInsufficientDriver', 'cudaErrorNoDevice',
                 'cudaErrorInitializationError', 'cudaErrorSystemDriverMismatch',
                 'cudaErrorCompatNotSupportedOnDevice')

#: What to install per JetPack (the CUDA runtime must not be newer than the driver's CUDA).
CUDA_PYTHON_ADVICE = ('JetPack 6.1/6.2: pip install "cuda-python==12.6.*"; JetPack 6.0: '
                      '"cuda-python==12.2.*"; JetPack 5: "cuda-python==11.8.*"')


class CudaDriverUnavailable(BackendUnavailable):
    """cuda-python is installed but no usable CUDA driver is (none visible, or too old)."""


def load_cudart() -> Any:
    """The cuda-python runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` < 12.6).

    Raises:
        BackendUnavailable: cuda-python is not installed, saying how to install it.
    """
    try:
        from cuda.bindings import runtime as cudart
        return cudart
    except ImportError:
        pass
    try:
        from cuda import cudart
        return cudart
    except ImportError as error:
        raise BackendUnavailable(
            f'cuda-python is not installed ({error}); {CUDA_PYTHON_ADVICE}') from None


def cuda_python_version() -> str:
    """The installed cuda-python (or cuda-bindings) version, ``unknown`` when not found."""
    import importlib.metadata
    for distribution in ('cuda-python', 'cuda-bindings'):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return 'unknown'


def cuda_call(operation: str, function: str, *args: Any) -> Any:
    """Call ``cudart.<function>(*args)`` and check its result (see ``call``).

    Args:
        operation: Words for the error message (``cudaMalloc of 8 MiB``).
        function: Name of the cuda-python runtime function.
        *args: Its arguments.

    Raises:
        CudaDriverUnavailable: No usable CUDA driver (raised or returned by cuda-python).
        BackendError: Any other CUDA error.
    """
    cudart = load_cudart()
    try:
        result = getattr(cudart, function)(*args)
    except RuntimeError as error:  # cuda-python < 12.9 without a loadable libcuda.so.1
        raise CudaDriverUnavailable(f'{operation}: {_driver_load_failure(error)}') from None
    return call(result, operation)


def call(result: Any, operation: str) -> Any:
    """Check a cuda-python result tuple ``(cudaError_t, *values)``.

    Args:
        result: What the cuda-python function returned.
        operation: Words for the error message (``cudaMalloc of 8 MiB``).

    Returns:
        ``None`` for no value, the value for one, a tuple for several.

    Raises:
        CudaDriverUnavailable: The code says there is no usable driver / GPU.
        BackendError: Any other code than ``cudaSuccess``.
    """
    cudart = load_cudart()
    if not isinstance(result, tuple) or not result:
        raise BackendError(f'{operation}: unexpected cuda-python result {result!r}')
    error, values = result[0], result[1:]
    if error != cudart.cudaError_t.cudaSuccess:
        if getattr(error, 'name', '') in DRIVER_ERRORS:
            raise CudaDriverUnavailable(f'{operation} failed: {error_text(error)}; '
                                        f'{driver_advice()}')
        raise BackendError(f'{operation} failed: {error_text(error)}')
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def error_text(error: Any) -> str:
    """``cudaErrorMemoryAllocation (out of memory)`` for a ``cudaError_t``."""
    cudart = load_cudart()
    name = getattr(error, 'name', str(error))
    try:
        code, text = cudart.cudaGetErrorString(error)
        if code == cudart.cudaError_t.cudaSuccess:
            text = text.decode() if isinstance(text, bytes) else str(text)
            return f'{name} ({text})'
    except Exception:  # noqa: BLE001 - the error text is best effort, the name is enough
        pass
    return name


def cuda_versions() -> Tuple[Optional[int], Optional[int]]:
    """(driver CUDA version, cuda-python's runtime CUDA version), e.g. ``(12060, 12090)``.

    The driver's is 0 when no driver is loaded; either is None when it cannot be asked (the
    driver query raises in cuda-python < 12.9 without a driver).
    """
    cudart = load_cudart()
    found = []
    for function in ('cudaDriverGetVersion', 'cudaRuntimeGetVersion'):
        try:
            code, version = getattr(cudart, function)()
            found.append(int(version) if code == cudart.cudaError_t.cudaSuccess else None)
        except Exception:  # noqa: BLE001 - RuntimeError without a driver, absent functions
            found.append(None)
    return found[0], found[1]


def version_text(version: Optional[int]) -> str:
    """12060 -> ``12.6``."""
    return 'unknown' if version is None else f'{version // 1000}.{version % 1000 // 10}'


def driver_advice() -> str:
    """Why cuda-python cannot use the driver, and what to do, from the two CUDA versions."""
    driver, runtime = cuda_versions()
    package = f'cuda-python {cuda_python_version()} (CUDA {version_text(runtime)} runtime)'
    if not driver:
        return (f'{package} finds no CUDA driver: no NVIDIA driver here, or a container '
                'started without the NVIDIA runtime (docker run --runtime nvidia)')
    if runtime is not None and runtime > driver:
        return (f'the driver supports CUDA {version_text(driver)}, older than {package}: '
                f'install a cuda-python for CUDA <= {version_text(driver)} ({CUDA_PYTHON_ADVICE})')
    return f'driver CUDA {version_text(driver)}, {package}'


def _driver_load_failure(error: RuntimeError) -> str:
    text = str(error)
    package = f'cuda-python {cuda_python_version()}'
    if 'dlopen' in text or 'cuInit' in text:
        return (f'{package} cannot load the CUDA driver libcuda.so.1 ({text}): no NVIDIA '
                'driver here, or a container started without the NVIDIA runtime (docker run '
                '--runtime nvidia)')
    return (f'{package} failed ({text}): the CUDA driver lacks what its runtime needs '
            f'(driver older than cuda-python? {CUDA_PYTHON_ADVICE})')


def device_count() -> int:
    """Number of CUDA devices (raises ``CudaDriverUnavailable`` when the driver is unusable)."""
    return int(cuda_call('cudaGetDeviceCount', 'cudaGetDeviceCount'))


def set_device(index: int = 0) -> None:
    """Make device ``index`` (its primary context) current for the calling thread."""
    cuda_call(f'cudaSetDevice({index})', 'cudaSetDevice', int(index))


@dataclass(frozen=True)
class GpuProperties:
    """What the engine cache needs to know about a GPU.

    Attributes:
        name: ``Orin``, ``NVIDIA GeForce RTX 4090``.
        compute_capability: ``(major, minor)``.
        total_memory_bytes: Global memory (on a Jetson: the shared system memory).
        multiprocessors: Streaming multiprocessor count (AGX Orin 16, Orin Nano 8GB 8).
    """

    name: str
    compute_capability: Tuple[int, int]
    total_memory_bytes: int
    multiprocessors: int = 0

    @property
    def compute_capability_text(self) -> str:
        return f'{self.compute_capability[0]}.{self.compute_capability[1]}'

    @property
    def memory_gib(self) -> int:
        """Total memory rounded to whole GiB (stable across kernels that reserve a bit more)."""
        return int(round(self.total_memory_bytes / (1 << 30)))


def gpu_properties(index: int = 0) -> GpuProperties:
    """Name, compute capability, memory and multiprocessor count of device ``index``."""
    props = cuda_call(f'cudaGetDeviceProperties({index})', 'cudaGetDeviceProperties',
                      int(index))
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b'\0', 1)[0].decode('utf-8', 'replace')
    return GpuProperties(name=str(name).strip(), compute_capability=(props.major, props.minor),
                         total_memory_bytes=int(props.totalGlobalMem),
                         multiprocessors=int(props.multiProcessorCount))


class CudaStream:
    """A non-default CUDA stream; ``handle`` is the integer TensorRT expects."""

    def __init__(self) -> None:
        self._stream = cuda_call('cudaStreamCreate', 'cudaStreamCreate')

    @property
    def handle(self) -> int:
        if self._stream is None:
            raise BackendError('CUDA stream used after close()')
        return int(self._stream)

    def synchronize(self) -> None:
        cuda_call('cudaStreamSynchronize', 'cudaStreamSynchronize', self.handle)

    def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            cuda_call('cudaStreamDestroy', 'cudaStreamDestroy', stream)


class DeviceBuffer:
    """``nbytes`` of device memory (``cudaMalloc``); ``pointer`` is its address as an int."""

    def __init__(self, nbytes: int) -> None:
        if nbytes <= 0:
            raise ValueError(f'device buffer size must be positive, got {nbytes} bytes')
        self.nbytes = int(nbytes)
        self._pointer = int(cuda_call(f'cudaMalloc of {_mib(self.nbytes)}', 'cudaMalloc',
                                      self.nbytes))

    @property
    def pointer(self) -> int:
        if self._pointer is None:
            raise BackendError('device buffer used after close()')
        return self._pointer

    def close(self) -> None:
        if self._pointer is not None:
            pointer, self._pointer = self._pointer, None
            cuda_call('cudaFree', 'cudaFree', pointer)


class PinnedArray:
    """A numpy array in page-locked host memory (``cudaMallocHost``), for async copies.

    ``array`` is a C-contiguous view of ``shape`` and ``dtype`` over the pinned block; it
    becomes invalid after ``close()`` (copy results out before closing).
    """

    def __init__(self, shape: Sequence[int], dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(d) for d in shape)
        if any(d <= 0 for d in self.shape):
            raise ValueError(f'pinned array shape must be positive, got {self.shape}')
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self._pointer = int(cuda_call(f'cudaMallocHost of {_mib(self.nbytes)}',
                                      'cudaMallocHost', self.nbytes))
        raw = (ctypes.c_ubyte * self.nbytes).from_address(self._pointer)
        self.array = np.frombuffer(raw, dtype=self.dtype).reshape(self.shape)

    @property
    def pointer(self) -> int:
        if self._pointer is None:
            raise BackendError('pinned host array used after close()')
        return self._pointer

    def close(self) -> None:
        if self._pointer is not None:
            pointer, self._pointer = self._pointer, None
            self.array = None
            cuda_call('cudaFreeHost', 'cudaFreeHost', pointer)


def copy_to_device_async(device: DeviceBuffer, host: PinnedArray, stream: CudaStream) -> None:
    """Queue host -> device copy of ``host`` on ``stream`` (sizes must match)."""
    _check_sizes(device, host)
    kind = load_cudart().cudaMemcpyKind.cudaMemcpyHostToDevice
    cuda_call(f'cudaMemcpyAsync host->device of {_mib(host.nbytes)}', 'cudaMemcpyAsync',
              device.pointer, host.pointer, host.nbytes, kind, stream.handle)


def copy_to_host_async(host: PinnedArray, device: DeviceBuffer, stream: CudaStream) -> None:
    """Queue device -> host copy into ``host`` on ``stream`` (sizes must match)."""
    _check_sizes(device, host)
    kind = load_cudart().cudaMemcpyKind.cudaMemcpyDeviceToHost
    cuda_call(f'cudaMemcpyAsync device->host of {_mib(host.nbytes)}', 'cudaMemcpyAsync',
              host.pointer, device.pointer, host.nbytes, kind, stream.handle)


def copy_array_to_device(device: DeviceBuffer, data: np.ndarray) -> None:
    """Copy a C-contiguous host array into ``device`` and wait (``cudaMemcpy``; sizes match)."""
    data = np.ascontiguousarray(data)
    if device.nbytes != data.nbytes:
        raise BackendError(f'copy size mismatch: device buffer {device.nbytes} bytes, host '
                           f'array {data.nbytes} bytes')
    kind = load_cudart().cudaMemcpyKind.cudaMemcpyHostToDevice
    cuda_call(f'cudaMemcpy host->device of {_mib(data.nbytes)}', 'cudaMemcpy',
              device.pointer, data.ctypes.data, data.nbytes, kind)


def _check_sizes(device: DeviceBuffer, host: PinnedArray) -> None:
    if device.nbytes != host.nbytes:
        raise BackendError(f'copy size mismatch: device buffer {device.nbytes} bytes, host '
                           f'array {host.nbytes} bytes')


def _mib(nbytes: int) -> str:
    return f'{nbytes / (1 << 20):.1f} MiB' if nbytes >= 1 << 20 else f'{nbytes} bytes'
