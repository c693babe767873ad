"""The I/O tensors of a TensorRT engine, and their check against the graph contract.

``describe_tensors`` lists an engine's inputs and outputs through the name-based API
(TensorRT >= 8.5) or the bindings (older); ``check_tensors`` fails unless they are the
manifest's (a ``GraphManifest`` for an engine built from a pruned graph) with the
contract's dtypes and image shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Sequence, Tuple

import numpy as np

from ..manifest import ModelManifest
from .base import BackendError

#: dtype of every tensor of the graph contract (``seg_perception.manifest``).
GRAPH_DTYPES = {
    'image': np.float32, 'center_threshold': np.float32, 'semantic': np.int32,
    'confidence': np.float32, 'instance': np.int32, 'panoptic': np.int32,
    'instance_score': np.float32,
}


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor: name, direction, numpy dtype, shape (-1 = dynamic), binding."""

    name: str
    is_input: bool
    dtype: Any
    shape: Tuple[int, ...]
    binding: int


def describe_tensors(trt: Any, engine: Any) -> List[TensorSpec]:
    """The engine's I/O tensors, via the name API (>= 8.5) or bindings (older)."""
    specs = []
    if hasattr(engine, 'num_io_tensors'):
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            specs.append(TensorSpec(
                name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                _numpy_dtype(trt, engine.get_tensor_dtype(name), name),
                tuple(engine.get_tensor_shape(name)), index))
    else:
        for index in range(engine.num_bindings):
            name = engine.get_binding_name(index)
            specs.append(TensorSpec(
                name, bool(engine.binding_is_input(index)),
                _numpy_dtype(trt, engine.get_binding_dtype(index), name),
                tuple(engine.get_binding_shape(index)), index))
    return specs


def check_tensors(specs: Sequence[TensorSpec], manifest: ModelManifest,
                  engine_path: str) -> None:
    """Raise ``BackendError`` unless the engine has the manifest's inputs and outputs."""
    by_name = {spec.name: spec for spec in specs}
    expected_image = (manifest.batch, 3, manifest.input_height, manifest.input_width)
    for name in manifest.input_names + manifest.output_names:
        spec = by_name.get(name)
        if spec is None:
            raise BackendError(f'engine {engine_path} has no tensor {name!r} (has '
                               f'{", ".join(sorted(by_name))}); rebuild it with --force')
        if spec.is_input != (name in manifest.input_names):
            raise BackendError(f'engine {engine_path}: tensor {name!r} has the wrong direction')
        if np.dtype(spec.dtype) != np.dtype(GRAPH_DTYPES[name]):
            raise BackendError(f'engine {engine_path}: tensor {name!r} is '
                               f'{np.dtype(spec.dtype)}, the graph contract says '
                               f'{np.dtype(GRAPH_DTYPES[name])}')
    image = by_name['image'].shape
    if len(image) != 4 or any(d not in (-1, e) for d, e in zip(image, expected_image)):
        raise BackendError(f'engine {engine_path} takes image {image}, the manifest says '
                           f'{expected_image}')


def _numpy_dtype(trt: Any, dtype: Any, name: str) -> Any:
    try:
        numpy_type = trt.nptype(dtype)
    except TypeError:
        numpy_type = None
    if numpy_type is None:
        raise BackendError(f'engine tensor {name!r} has type {dtype}, which the graph contract '
                           'does not use (int32 / float32 only)')
    return np.dtype(numpy_type)
