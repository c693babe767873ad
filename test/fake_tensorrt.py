"""A stand-in for the ``tensorrt`` module (the TensorRT 10 Python API), for machines without it.

``make_module(cudart)`` returns a module with what ``seg_perception.runtime`` calls:
``Builder`` / ``IBuilderConfig`` (flags, TF32 on by default as in TensorRT, memory pools,
timing cache, progress monitor), ``OnnxParser``, ``Runtime`` and engines with the name-based
I/O API, ``IInt8EntropyCalibrator2`` and the enums. ``version='11.0.0'`` drops the FP16 /
INT8 / precision-constraint flags and layer precisions, like TensorRT 11.

The parser builds the network the way onnx-tensorrt does, from a real ONNX file: one layer
per node named after it, ``CONSTANT`` layers named after the constants / initializers they
hold, ``SHAPE`` layers and shape tensors (not execution tensors), ``TOPK`` with a float and
an int32 output for ArgMax / ArgMin followed by an ``ONNXTRT_castHelper_N``, and an
``ONNXTRT_Broadcast_N`` shuffle in front of an elementwise input of lower rank.

A build records what it was asked for in ``module.builds`` (flags, pinned layers and the
calling thread's CUDA device) and, for INT8, drives the calibrator as TensorRT's Python
wrapper does: an exception in ``get_batch`` is printed and read as "no more data".
"""

from __future__ import annotations

import ctypes
import enum
import functools
import json
import threading
import types
from typing import Any, Dict, List, Optional

import numpy as np

DTYPES = {'float32': np.float32, 'float16': np.float16, 'int8': np.int8, 'int32': np.int32,
          'int64': np.int64, 'bool': np.bool_}
ONNX_TYPES = {1: 'float32', 10: 'float16', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool'}
OP_LAYERS = {'Conv': 'CONVOLUTION', 'ConvTranspose': 'DECONVOLUTION', 'MatMul':
             'MATRIX_MULTIPLY', 'Shape': 'SHAPE', 'TopK': 'TOPK', 'Cast': 'CAST',
             'Reshape': 'SHUFFLE', 'Transpose': 'SHUFFLE', 'Unsqueeze': 'SHUFFLE',
             'Squeeze': 'SHUFFLE', 'Resize': 'RESIZE', 'Concat': 'CONCATENATION',
             'Slice': 'SLICE', 'Gather': 'GATHER', 'GatherElements': 'GATHER', 'Where':
             'SELECT', 'MaxPool': 'POOLING', 'Exp': 'UNARY', 'Relu': 'ACTIVATION'}
ELEMENTWISE = {'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Greater', 'Less', 'Equal',
               'And', 'Or', 'GreaterOrEqual', 'LessOrEqual'}


class DataType:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f'DataType.{self.name.upper()}'


class Tensor:
    def __init__(self, name: str, dtype: DataType, shape=(), execution: bool = True) -> None:
        self.name, self.dtype, self.shape = name, dtype, tuple(shape)
        self.is_execution_tensor = execution
        self.is_shape_tensor = not execution


class Layer:
    def __init__(self, trt, name, kind, inputs, outputs) -> None:
        self.name, self.type, self._trt = name, getattr(trt.LayerType, kind), trt
        self._inputs, self._outputs = list(inputs), list(outputs)
        self.num_inputs, self.num_outputs = len(inputs), len(outputs)
        self.precision_is_set, self._precision, self.output_types = False, trt.float32, {}

    def get_input(self, index):
        return self._inputs[index]

    def get_output(self, index):
        return self._outputs[index]

    @property
    def precision(self):
        return self._precision

    @precision.setter
    def precision(self, value):
        self._precision, self.precision_is_set = value, True

    def reset_precision(self):
        self._precision, self.precision_is_set = self._trt.float32, False

    def set_output_type(self, index, dtype):
        assert 0 <= index < self.num_outputs
        self.output_types[index] = dtype


class Network:
    def __init__(self, flags: int) -> None:
        self.flags, self.layers, self.inputs, self.outputs = flags, [], [], []

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))
    num_outputs = property(lambda self: len(self.outputs))

    def get_layer(self, index):
        return self.layers[index]

    def get_input(self, index):
        return self.inputs[index]

    def get_output(self, index):
        return self.outputs[index]


def parse_onnx(trt, network: Network, path: str) -> None:
    """Fill ``network`` from the ONNX file the way onnx-tensorrt names and splits layers."""
    import onnx
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    graph = model.graph
    info = {v.name: v.type.tensor_type for v in
            list(graph.value_info) + list(graph.input) + list(graph.output)}
    initializers = {i.name: i for i in graph.initializer}
    tensors: Dict[str, Tensor] = {}
    counter = {'n': 0}

    def shape_of(name):
        kind = info.get(name)
        if kind is None or not kind.HasField('shape'):
            return ()
        return tuple(d.dim_value or -1 for d in kind.shape.dim)

    def dtype_of(name):
        if name in initializers:
            return getattr(trt, ONNX_TYPES.get(initializers[name].data_type, 'float32'))
        kind = info.get(name)
        return getattr(trt, ONNX_TYPES.get(kind.elem_type if kind else 1, 'float32'))

    def rank_of(name):
        if name in initializers:
            return len(initializers[name].dims)
        kind = info.get(name)
        return len(kind.shape.dim) if kind is not None and kind.HasField('shape') else None

    def helper(prefix, kind, source, dtype, execution=True):
        counter['n'] += 1
        name = f'ONNXTRT_{prefix}_{counter["n"]}'
        out = Tensor(f'{name}_output', dtype, execution=execution)
        network.layers.append(Layer(trt, name, kind, [source], [out]))
        return out

    def tensor(name):
        if name not in tensors and name in initializers:   # weights: a constant layer
            out = Tensor(name, dtype_of(name))
            network.layers.append(Layer(trt, name, 'CONSTANT', [], [out]))
            tensors[name] = out
        return tensors.get(name)

    for value in graph.input:
        tensors[value.name] = Tensor(value.name, dtype_of(value.name), shape_of(value.name))
        network.inputs.append(tensors[value.name])
    for node in graph.node:
        if node.op_type == 'Constant':
            out = Tensor(node.output[0], getattr(trt, ONNX_TYPES.get(
                node.attribute[0].t.data_type, 'float32')))
            network.layers.append(Layer(trt, node.output[0], 'CONSTANT', [], [out]))
            tensors[node.output[0]] = out
            continue
        inputs = [tensor(name) for name in node.input if name]
        shape_only = node.op_type == 'Shape' or (
            any(t.is_shape_tensor for t in inputs) and all(
                t.is_shape_tensor or t.name in initializers or dtype_of(t.name) is trt.int64
                for t in inputs))
        if node.op_type in ELEMENTWISE and len(inputs) == 2 and not shape_only:
            ranks = [rank_of(name) for name in node.input]
            if None not in ranks and ranks[0] != ranks[1]:
                low = ranks.index(min(ranks))
                inputs[low] = helper('Broadcast', 'SHUFFLE', inputs[low], inputs[low].dtype)
        if node.op_type in ('ArgMax', 'ArgMin'):
            values = Tensor(f'{node.name}_values', dtype_of(node.input[0]))
            indices = Tensor(f'{node.name}_indices', trt.int32)
            network.layers.append(Layer(trt, node.name, 'TOPK', inputs, [values, indices]))
            out = helper('castHelper', 'CAST', indices, trt.int64)
            out.name = node.output[0]
            tensors[node.output[0]] = out
            continue
        outputs = [Tensor(name, dtype_of(name), shape_of(name), execution=not shape_only)
                   for name in node.output]
        kind = OP_LAYERS.get(node.op_type, 'ELEMENTWISE' if node.op_type in ELEMENTWISE
                             else 'REDUCE' if node.op_type.startswith('Reduce') else 'UNARY')
        network.layers.append(Layer(trt, node.name, kind, inputs, outputs))
        tensors.update({t.name: t for t in outputs})
    network.outputs = [tensors[value.name] for value in graph.output]


class Logger:
    WARNING = 2

    def __init__(self, severity: int = 2) -> None:
        self.severity = severity


class IInt8EntropyCalibrator2:
    def __init__(self) -> None:
        pass


class IProgressMonitor:
    def __init__(self) -> None:
        pass


class TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self):
        return memoryview(b'timing-cache')


class BuilderConfig:
    def __init__(self, trt) -> None:
        self.flags = {trt.BuilderFlag.TF32}          # TF32 is on unless cleared
        self.pools, self.profiles = {}, []
        self.int8_calibrator = self.progress_monitor = self._timing = None

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)

    def get_flag(self, flag):
        return flag in self.flags

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def set_calibration_profile(self, profile):
        self.calibration_profile = profile

    def create_timing_cache(self, data):
        return TimingCache(bytes(data))

    def set_timing_cache(self, cache, ignore_mismatch):
        self._timing = cache
        return True

    def get_timing_cache(self):
        return self._timing


class Builder:
    def __init__(self, trt, logger) -> None:
        self.trt = trt
        self.device = trt.cudart.current_device() if trt.cudart is not None else None

    def create_network(self, flags=0):
        return Network(flags)

    def create_builder_config(self):
        return BuilderConfig(self.trt)

    def create_optimization_profile(self):
        return types.SimpleNamespace(set_shape=lambda *args: None)

    def build_serialized_network(self, network, config):
        trt = self.trt
        record = {'flags': sorted(flag.name for flag in config.flags),
                  'builder_device': self.device, 'thread': threading.current_thread().name,
                  'device': trt.cudart.current_device() if trt.cudart is not None else None,
                  'pinned': [layer.name for layer in network.layers
                             if getattr(layer, 'precision_is_set', False)], 'batches': 0}
        trt.builds.append(record)
        int8 = trt.BuilderFlag.__members__.get('INT8')
        if int8 in config.flags and config.int8_calibrator is not None:
            if not self._calibrate(config.int8_calibrator, network, record):
                return None     # "Calibration failure occurred with no scaling factors"
        if trt.fail_build:
            return None
        io = [(t.name, t in network.inputs, t.dtype.name, list(t.shape))
              for t in network.inputs + network.outputs]
        return memoryview(json.dumps({'io': io, 'record': record}).encode())

    @staticmethod
    def _calibrate(calibrator, network, record) -> bool:
        if calibrator.read_calibration_cache() is not None:
            return True
        names = [t.name for t in network.inputs]
        while True:
            try:                    # TensorRT's wrapper: an exception ends calibration
                pointers = calibrator.get_batch(names)
            except Exception as error:  # noqa: BLE001 - as TensorRT does
                print(f'[ERROR] Exception caught in get_batch(): {error}')
                pointers = None
            if not pointers:
                break
            record['batches'] += 1
        if record['batches']:
            calibrator.write_calibration_cache(memoryview(b'calibration table'))
        return bool(record['batches'])


class Engine:
    def __init__(self, trt, description) -> None:
        self.trt, self.io, self.record = trt, description['io'], description['record']
        self.num_io_tensors = len(self.io)

    def _find(self, name):
        return next(item for item in self.io if item[0] == name)

    def get_tensor_name(self, index):
        return self.io[index][0]

    def get_tensor_mode(self, name):
        modes = self.trt.TensorIOMode
        return modes.INPUT if self._find(name)[1] else modes.OUTPUT

    def get_tensor_dtype(self, name):
        return getattr(self.trt, self._find(name)[2])

    def get_tensor_shape(self, name):
        return tuple(self._find(name)[3])

    def create_execution_context(self):
        return Context(self.trt, self)


class Runtime:
    def __init__(self, trt, logger) -> None:
        self.trt = trt

    def deserialize_cuda_engine(self, data):
        try:
            return Engine(self.trt, json.loads(bytes(data)))
        except ValueError:
            return None


class OnnxParser:
    def __init__(self, trt, network, logger) -> None:
        self.trt, self.network, self.num_errors = trt, network, 0

    def parse_from_file(self, path):
        parse_onnx(self.trt, self.network, path)
        return True


class Context:
    """Runs on the fake cudart's host-memory "GPU": ``semantic`` = image red > 127.

    Like a real execution context it belongs to one thread: used from another, or without a
    current device, it refuses to enqueue.
    """

    def __init__(self, trt, engine) -> None:
        self.trt, self.engine, self.thread = trt, engine, threading.get_ident()
        self.shapes = {item[0]: tuple(item[3]) for item in engine.io}
        self.addresses: Dict[str, int] = {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def set_tensor_address(self, name, pointer):
        self.addresses[name] = int(pointer)
        return True

    def execute_async_v3(self, stream):
        cudart = self.trt.cudart
        if threading.get_ident() != self.thread or cudart.current_device() is None:
            return False
        cudart.enqueue(stream, self._compute)
        return True

    def _array(self, name):
        dtype = np.dtype(DTYPES[self.engine.get_tensor_dtype(name).name])
        shape = self.shapes[name]
        size = int(np.prod(shape)) * dtype.itemsize
        buffer = (ctypes.c_char * size).from_address(self.addresses[name])
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    def _compute(self):
        image = self._array('image')
        for name, is_input, _, _ in self.engine.io:
            if not is_input:
                self._array(name)[...] = (image[:, 0] > 127) if name == 'semantic' else 0
        return self.trt.cudart.cudaError_t.cudaSuccess


def make_module(cudart: Any = None, version: str = '10.3.0',
                fail_build: bool = False) -> types.ModuleType:
    """A fresh fake ``tensorrt`` module (see the module docstring)."""
    trt = types.ModuleType('tensorrt')
    trt.__version__, trt.cudart, trt.fail_build = version, cudart, fail_build
    trt.builds: List[Dict[str, Any]] = []
    for name in DTYPES:
        setattr(trt, name, DataType(name))

    def nptype(dtype):
        if not isinstance(dtype, DataType):
            raise TypeError(f'not a DataType: {dtype!r}')
        return DTYPES[dtype.name]

    trt.nptype = nptype
    weak = [] if int(version.split('.')[0]) >= 11 else ['FP16', 'INT8',
                                                         'OBEY_PRECISION_CONSTRAINTS']
    trt.BuilderFlag = enum.IntEnum('BuilderFlag', ['TF32', 'DEBUG'] + weak)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum('NetworkDefinitionCreationFlag',
                                                     {'EXPLICIT_BATCH': 0, 'STRONGLY_TYPED': 1})
    trt.MemoryPoolType = enum.IntEnum('MemoryPoolType', ['WORKSPACE'])
    trt.TensorIOMode = enum.IntEnum('TensorIOMode', ['NONE', 'INPUT', 'OUTPUT'])
    trt.LayerType = enum.IntEnum('LayerType', sorted(set(OP_LAYERS.values()) | {
        'CONSTANT', 'ELEMENTWISE', 'REDUCE', 'UNARY', 'SHUFFLE', 'CAST'}))
    trt.Logger, trt.IInt8EntropyCalibrator2 = Logger, IInt8EntropyCalibrator2
    trt.IProgressMonitor = IProgressMonitor
    trt.Builder = functools.partial(Builder, trt)
    trt.Runtime = functools.partial(Runtime, trt)
    trt.OnnxParser = functools.partial(OnnxParser, trt)
    return trt


def engine_record(path: str) -> Optional[Dict[str, Any]]:
    """What the fake build recorded in the engine file at ``path``."""
    with open(path, 'rb') as stream:
        return json.loads(stream.read())['record']


def install(monkeypatch: Any, **module_options: Any) -> types.ModuleType:
    """A working stand-in GPU (``fake_cuda``) and a fake ``tensorrt`` in ``sys.modules`` for
    one test; returns the module (its ``cudart`` is the stand-in runtime)."""
    import sys

    import fake_cuda
    cudart = fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('ok'))
    module = make_module(cudart, **module_options)
    monkeypatch.setitem(sys.modules, 'tensorrt', module)
    return module
