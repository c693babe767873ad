"""A stand-in for cuda-python's runtime module, for tests on machines without a GPU.

``FakeCudart(mode)`` answers like ``cuda.bindings.runtime`` does (result tuples whose first
element is a ``cudaError_t`` IntEnum), in one of the ways the real releases behave here:

- ``raise``: cuda-python 11.8-12.8 without ``libcuda.so.1`` (measured with 11.8.7, 12.2.1
  and 12.6.2): the first driver call raises ``RuntimeError('Failed to dlopen
  libcuda.so.1')``, later ones ``RuntimeError('Function "cuInit" not found')``; only
  ``cudaRuntimeGetVersion`` answers.
- ``no_driver``: 12.9 / 13.x without a driver: ``cudaErrorInsufficientDriver``, driver 0.
- ``old_driver``: a driver older than the runtime (cuda-python 12.9 on JetPack 6.1).
- ``ok``: a working "GPU" whose device memory is host memory. ``cudaMemcpyAsync`` is queued
  on its stream and done at ``cudaStreamSynchronize`` (like a real GPU, results are there
  only after a sync); copies check that source and destination are of the kind named.

``install(monkeypatch, fake)`` puts it where ``seg_perception.runtime.cuda_memory`` imports
it from (``cuda.bindings.runtime``).
"""

from __future__ import annotations

import ctypes
import enum
import sys
import threading
import types
from typing import Dict, List, Tuple


class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's name
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInitializationError = 3
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidResourceHandle = 400


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801 - cuda-python's name
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


ERROR_STRINGS = {
    cudaError_t.cudaErrorMemoryAllocation: b'out of memory',
    cudaError_t.cudaErrorInsufficientDriver:
        b'CUDA driver version is insufficient for CUDA runtime version',
    cudaError_t.cudaErrorInvalidDevice: b'invalid device ordinal',
    cudaError_t.cudaErrorInvalidResourceHandle: b'invalid resource handle',
}
MAX_ALLOCATION = 1 << 34


class FakeCudart(types.ModuleType):
    """See the module docstring. ``calls`` logs ``(thread name, current device, function,
    args)``; ``per_device`` overrides properties of one device (``{1: {'name': b'x'}}``)."""

    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind

    def __init__(self, mode: str = 'ok', devices: int = 1, driver: int = 12060,
                 runtime: int = 12060, name: bytes = b'Orin', capability=(8, 7),
                 memory: int = 7 << 30, multiprocessors: int = 8,
                 per_device: Dict[int, dict] = None) -> None:
        super().__init__('cuda.bindings.runtime')
        assert mode in ('ok', 'raise', 'no_driver', 'old_driver')
        self.mode, self.devices, self.runtime = mode, devices, runtime
        self.driver = {'ok': driver, 'raise': None, 'no_driver': 0}.get(mode, driver)
        self.properties = types.SimpleNamespace(
            name=name + b'\0' * 8, major=capability[0], minor=capability[1],
            totalGlobalMem=memory, multiProcessorCount=multiprocessors)
        self.per_device = per_device or {}
        self.calls: List[Tuple[str, object, str, tuple]] = []
        self.device_memory: Dict[int, ctypes.Array] = {}
        self.host_memory: Dict[int, ctypes.Array] = {}
        self.streams: Dict[int, list] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._dlopen_failed = False
        self._next_stream = 0x1000

    # ---------------------------------------------------------------- helpers

    def current_device(self):
        """The calling thread's device (None until it called cudaSetDevice)."""
        return getattr(self._local, 'device', None)

    def _enter(self, function: str, args: tuple):
        with self._lock:
            self.calls.append((threading.current_thread().name, self.current_device(),
                               function, args))
        if self.mode == 'raise':
            if not self._dlopen_failed:
                self._dlopen_failed = True
                raise RuntimeError('Failed to dlopen libcuda.so.1')
            raise RuntimeError('Function "cuInit" not found')
        if self.mode in ('no_driver', 'old_driver'):
            return cudaError_t.cudaErrorInsufficientDriver
        return None

    def _allocate(self, table: Dict[int, ctypes.Array], size: int):
        if size > MAX_ALLOCATION:
            return cudaError_t.cudaErrorMemoryAllocation, None
        block = ctypes.create_string_buffer(max(1, int(size)))
        with self._lock:
            table[ctypes.addressof(block)] = block
        return cudaError_t.cudaSuccess, ctypes.addressof(block)

    def _inside(self, table: Dict[int, ctypes.Array], pointer: int, size: int) -> bool:
        with self._lock:                   # other threads allocate and free meanwhile
            blocks = list(table.items())
        return any(start <= pointer and pointer + size <= start + len(block)
                   for start, block in blocks)

    def _copy(self, dst: int, src: int, size: int, kind: cudaMemcpyKind) -> cudaError_t:
        device_dst = self._inside(self.device_memory, dst, size)
        device_src = self._inside(self.device_memory, src, size)
        wanted = {cudaMemcpyKind.cudaMemcpyHostToDevice: (True, False),
                  cudaMemcpyKind.cudaMemcpyDeviceToHost: (False, True),
                  cudaMemcpyKind.cudaMemcpyDeviceToDevice: (True, True),
                  cudaMemcpyKind.cudaMemcpyHostToHost: (False, False)}[kind]
        if (device_dst, device_src) != wanted:
            return cudaError_t.cudaErrorInvalidValue
        ctypes.memmove(dst, src, size)
        return cudaError_t.cudaSuccess

    # ------------------------------------------------------------ the runtime API

    def cudaRuntimeGetVersion(self):
        return cudaError_t.cudaSuccess, self.runtime

    def cudaDriverGetVersion(self):
        if self.mode == 'raise':
            raise RuntimeError('Function "cuDriverGetVersion" not found')
        return cudaError_t.cudaSuccess, self.driver

    def cudaGetErrorString(self, error):
        if self.mode == 'raise':
            raise RuntimeError('Function "cuGetErrorString" not found')
        return cudaError_t.cudaSuccess, ERROR_STRINGS.get(error, b'unknown error')

    def cudaGetDeviceCount(self):
        return (self._enter('cudaGetDeviceCount', ()) or cudaError_t.cudaSuccess,
                None if self.mode != 'ok' else self.devices)

    def cudaSetDevice(self, index):
        failure = self._enter('cudaSetDevice', (index,))
        if failure:
            return (failure,)
        if not 0 <= index < self.devices:
            return (cudaError_t.cudaErrorInvalidDevice,)
        self._local.device = index
        return (cudaError_t.cudaSuccess,)

    def cudaGetDeviceProperties(self, index):
        failure = self._enter('cudaGetDeviceProperties', (index,))
        if failure:
            return failure, None
        if not 0 <= index < self.devices:
            return cudaError_t.cudaErrorInvalidDevice, None
        return cudaError_t.cudaSuccess, types.SimpleNamespace(
            **{**vars(self.properties), **self.per_device.get(index, {})})

    def cudaMalloc(self, size):
        failure = self._enter('cudaMalloc', (size,))
        return (failure, None) if failure else self._allocate(self.device_memory, size)

    def cudaMallocHost(self, size):
        failure = self._enter('cudaMallocHost', (size,))
        return (failure, None) if failure else self._allocate(self.host_memory, size)

    def cudaFree(self, pointer):
        self._enter('cudaFree', (pointer,))
        with self._lock:
            found = self.device_memory.pop(pointer, None)
        return (cudaError_t.cudaSuccess if found is not None
                else cudaError_t.cudaErrorInvalidValue,)

    def cudaFreeHost(self, pointer):
        self._enter('cudaFreeHost', (pointer,))
        with self._lock:
            found = self.host_memory.pop(pointer, None)
        return (cudaError_t.cudaSuccess if found is not None
                else cudaError_t.cudaErrorInvalidValue,)

    def cudaMemGetInfo(self):
        failure = self._enter('cudaMemGetInfo', ())
        if failure:
            return failure, None, None
        with self._lock:
            used = sum(len(block) for block in self.device_memory.values())
        return cudaError_t.cudaSuccess, self.properties.totalGlobalMem - used, \
            self.properties.totalGlobalMem

    def cudaStreamCreate(self):
        failure = self._enter('cudaStreamCreate', ())
        if failure:
            return failure, None
        with self._lock:
            self._next_stream += 1
            handle = self._next_stream
            self.streams[handle] = []
        return cudaError_t.cudaSuccess, handle

    def cudaStreamSynchronize(self, stream):
        self._enter('cudaStreamSynchronize', (stream,))
        queued = self.streams.get(int(stream))
        if queued is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        while queued:
            error = queued.pop(0)()
            if error != cudaError_t.cudaSuccess:
                return (error,)
        return (cudaError_t.cudaSuccess,)

    def cudaStreamDestroy(self, stream):
        self._enter('cudaStreamDestroy', (stream,))
        with self._lock:
            found = self.streams.pop(int(stream), None)
        return (cudaError_t.cudaSuccess if found is not None
                else cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaMemcpy(self, dst, src, size, kind):
        failure = self._enter('cudaMemcpy', (dst, src, size, kind))
        return (failure or self._copy(dst, src, size, kind),)

    def cudaMemcpyAsync(self, dst, src, size, kind, stream):
        failure = self._enter('cudaMemcpyAsync', (dst, src, size, kind, stream))
        if failure:
            return (failure,)
        queued = self.streams.get(int(stream))
        if queued is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        queued.append(lambda: self._copy(dst, src, size, kind))
        return (cudaError_t.cudaSuccess,)

    def enqueue(self, stream: int, work) -> None:
        """Queue ``work()`` (returning a cudaError_t) on ``stream``, as a kernel would be."""
        self.streams[int(stream)].append(work)


def install(monkeypatch, fake: FakeCudart, version: str = '12.6.2.post1') -> FakeCudart:
    """Make ``from cuda.bindings import runtime`` return ``fake`` (and report ``version``)."""
    import importlib.metadata
    cuda = types.ModuleType('cuda')
    bindings = types.ModuleType('cuda.bindings')
    bindings.runtime = fake
    cuda.bindings = bindings
    monkeypatch.setitem(sys.modules, 'cuda', cuda)
    monkeypatch.setitem(sys.modules, 'cuda.bindings', bindings)
    monkeypatch.setitem(sys.modules, 'cuda.bindings.runtime', fake)
    real_version = importlib.metadata.version

    def fake_version(distribution):
        return version if distribution in ('cuda-python', 'cuda-bindings') \
            else real_version(distribution)

    monkeypatch.setattr(importlib.metadata, 'version', fake_version)
    return fake
