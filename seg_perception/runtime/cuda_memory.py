"""CUDA device buffers, pinned host arrays and streams through cuda-python's runtime API.

Every cuda-python call returns a tuple whose first element is a ``cudaError_t``; ``call``
checks it and raises ``BackendError`` naming the operation and CUDA's own error text. No
pycuda, no implicit context: the runtime API uses the device's primary context, made
current per thread by ``set_device`` (call it in every thread that touches these objects).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Sequence, Tuple

import numpy as np

from .base import BackendError, BackendUnavailable


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
            f'cuda-python is not installed ({error}); pip install "cuda-python==<your CUDA '
            'major>.*" (12.* on JetPack 6, 11.* on JetPack 5)') from None


def call(result: Any, operation: str) -> Any:
    """Check a cuda-python result tuple ``(cudaError_t, *values)``.

    Args:
        result: What the cuda-python function returned.
        operation: Words for the error message (``cudaMalloc of 8 MiB``).

    Returns:
        ``None`` for no value, the value for one, a tuple for several.

    Raises:
        BackendError: The error code is not ``cudaSuccess``.
    """
    cudart = load_cudart()
    if not isinstance(result, tuple) or not result:
        raise BackendError(f'{operation}: unexpected cuda-python result {result!r}')
    error, values = result[0], result[1:]
    if error != cudart.cudaError_t.cudaSuccess:
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


def device_count() -> int:
    """Number of CUDA devices (raises ``BackendError`` when the driver is unusable)."""
    return int(call(load_cudart().cudaGetDeviceCount(), 'cudaGetDeviceCount'))


def set_device(index: int = 0) -> None:
    """Make device ``index`` (its primary context) current for the calling thread."""
    call(load_cudart().cudaSetDevice(int(index)), f'cudaSetDevice({index})')


@dataclass(frozen=True)
class GpuProperties:
    """What the engine cache needs to know about a GPU."""

    name: str
    compute_capability: Tuple[int, int]
    total_memory_bytes: int

    @property
    def compute_capability_text(self) -> str:
        return f'{self.compute_capability[0]}.{self.compute_capability[1]}'


def gpu_properties(index: int = 0) -> GpuProperties:
    """Name, compute capability and memory of device ``index``."""
    props = call(load_cudart().cudaGetDeviceProperties(int(index)),
                 f'cudaGetDeviceProperties({index})')
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b'\0', 1)[0].decode('utf-8', 'replace')
    return GpuProperties(name=str(name).strip(), compute_capability=(props.major, props.minor),
                         total_memory_bytes=int(props.totalGlobalMem))


class CudaStream:
    """A non-default CUDA stream; ``handle`` is the integer TensorRT expects."""

    def __init__(self) -> None:
        self._stream = call(load_cudart().cudaStreamCreate(), 'cudaStreamCreate')

    @property
    def handle(self) -> int:
        if self._stream is None:
            raise BackendError('CUDA stream used after close()')
        return int(self._stream)

    def synchronize(self) -> None:
        call(load_cudart().cudaStreamSynchronize(self.handle), 'cudaStreamSynchronize')

    def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            call(load_cudart().cudaStreamDestroy(stream), 'cudaStreamDestroy')


class DeviceBuffer:
    """``nbytes`` of device memory (``cudaMalloc``); ``pointer`` is its address as an int."""

    def __init__(self, nbytes: int) -> None:
        if nbytes <= 0:
            raise ValueError(f'device buffer size must be positive, got {nbytes} bytes')
        self.nbytes = int(nbytes)
        self._pointer = int(call(load_cudart().cudaMalloc(self.nbytes),
                                 f'cudaMalloc of {_mib(self.nbytes)}'))

    @property
    def pointer(self) -> int:
        if self._pointer is None:
            raise BackendError('device buffer used after close()')
        return self._pointer

    def close(self) -> None:
        if self._pointer is not None:
            pointer, self._pointer = self._pointer, None
            call(load_cudart().cudaFree(pointer), 'cudaFree')


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
        self._pointer = int(call(load_cudart().cudaMallocHost(self.nbytes),
                                 f'cudaMallocHost of {_mib(self.nbytes)}'))
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
            call(load_cudart().cudaFreeHost(pointer), 'cudaFreeHost')


def copy_to_device_async(device: DeviceBuffer, host: PinnedArray, stream: CudaStream) -> None:
    """Queue host -> device copy of ``host`` on ``stream`` (sizes must match)."""
    _check_sizes(device, host)
    cudart = load_cudart()
    call(cudart.cudaMemcpyAsync(device.pointer, host.pointer, host.nbytes,
                                cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle),
         f'cudaMemcpyAsync host->device of {_mib(host.nbytes)}')


def copy_to_host_async(host: PinnedArray, device: DeviceBuffer, stream: CudaStream) -> None:
    """Queue device -> host copy into ``host`` on ``stream`` (sizes must match)."""
    _check_sizes(device, host)
    cudart = load_cudart()
    call(cudart.cudaMemcpyAsync(host.pointer, device.pointer, host.nbytes,
                                cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle),
         f'cudaMemcpyAsync device->host of {_mib(host.nbytes)}')


def _check_sizes(device: DeviceBuffer, host: PinnedArray) -> None:
    if device.nbytes != host.nbytes:
        raise BackendError(f'copy size mismatch: device buffer {device.nbytes} bytes, host '
                           f'array {host.nbytes} bytes')


def _mib(nbytes: int) -> str:
    return f'{nbytes / (1 << 20):.1f} MiB' if nbytes >= 1 << 20 else f'{nbytes} bytes'
