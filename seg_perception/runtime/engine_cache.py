"""TensorRT engine cache: what an engine was built for, and whether it may be loaded.

A serialized TensorRT engine only runs on the TensorRT version and GPU it was built on;
loading a mismatched one can crash the process instead of raising. So every engine file
``<name>.engine`` has a sidecar ``<name>.engine.json`` recording its ``EngineKey`` (ONNX
checksum, TensorRT version, GPU and compute capability, precision, shapes, builder options)
and the engine's own checksum. ``decide`` compares the sidecar with the key wanted now and
never lets a mismatched, unrecorded or altered engine reach ``deserialize_cuda_engine``.

Writes are atomic and ordered (old sidecar removed, engine renamed into place, then the new
sidecar), so a build killed at any point leaves no engine/sidecar pair that looks valid.

This module does not import TensorRT: it is plain file and JSON handling.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, fields
import datetime
import hashlib
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ..packages.atomic import atomic_open, atomic_write_text
from ..packages.loading import file_sha256  # noqa: F401 (re-exported for the TensorRT backend)

#: 2: TF32 and the GPU's multiprocessor count and memory joined the key.
KEY_FORMAT_VERSION = 2
SIDECAR_SUFFIX = '.json'
ENGINE_SUFFIX = '.engine'
ENGINE_PRECISIONS = ('fp32', 'fp16', 'int8')

ACTION_USE = 'use'
ACTION_BUILD = 'build'
ACTION_FAIL = 'fail'

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class EngineKey:
    """Everything that makes one serialized engine different from another.

    Attributes:
        onnx_sha256: Checksum of the ONNX file the engine was built from.
        tensorrt_version: ``tensorrt.__version__`` (``10.3.0``); engines are not portable
            across versions.
        gpu_name: CUDA device name (``Orin``, ``NVIDIA GeForce RTX 4090``).
        compute_capability: ``major.minor`` (``8.7`` on Orin).
        gpu_multiprocessors: Streaming multiprocessor count. Every Orin module reports the
            name ``Orin`` and 8.7; this tells an AGX Orin (16) from an Orin Nano (4 or 8).
        gpu_memory_gib: Total GPU memory in whole GiB (Orin NX 8 GB from 16 GB).
        precision: ``fp32``, ``fp16`` or ``int8``.
        input_shapes: ``((name, (B, C, H, W)), ...)`` sorted by name: the shapes the engine
            runs at (for dynamic batch, the optimisation profile's ``opt`` shape).
        batch_profile: ``(min, opt, max)`` batch of the optimisation profile.
        fp32_layers: Layer-name patterns kept in FP32 by precision constraints.
        calibration_sha256: Digest of the INT8 calibration image set ('' when not INT8).
        strongly_typed: Built as a strongly-typed network (TensorRT >= 11 or an FP16 ONNX).
        tf32: TF32 allowed for FP32 layers (``BuilderFlag.TF32``; off in our builds).
        outputs: Graph outputs of an engine built from the graph pruned to them; ``()`` =
            all (then left out of the JSON: keys of such engines keep their digests).
        format_version: Version of this key's layout (an older one is never loaded).
    """

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shapes: Tuple[Tuple[str, Tuple[int, ...]], ...]
    batch_profile: Tuple[int, int, int] = (1, 1, 1)
    fp32_layers: Tuple[str, ...] = ()
    calibration_sha256: str = ''
    strongly_typed: bool = False
    gpu_multiprocessors: int = 0
    gpu_memory_gib: int = 0
    tf32: bool = False
    outputs: Tuple[str, ...] = ()
    format_version: int = KEY_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.precision not in ENGINE_PRECISIONS:
            raise ValueError(f'engine precision {self.precision!r} is not one of '
                             f'{", ".join(ENGINE_PRECISIONS)}')
        # Normalise containers so keys read back from JSON compare equal to fresh ones.
        shapes = tuple(sorted((str(name), tuple(int(d) for d in shape))
                              for name, shape in self.input_shapes))
        object.__setattr__(self, 'input_shapes', shapes)
        object.__setattr__(self, 'batch_profile', tuple(int(b) for b in self.batch_profile))
        for name in ('fp32_layers', 'outputs'):
            object.__setattr__(self, name, tuple(str(p) for p in getattr(self, name)))
        if len(self.batch_profile) != 3:
            raise ValueError(f'batch_profile must be (min, opt, max), got {self.batch_profile}')

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data['input_shapes'] = {name: list(shape) for name, shape in self.input_shapes}
        for name in ('batch_profile', 'fp32_layers', 'outputs'):
            data[name] = list(getattr(self, name))
        if not self.outputs:
            del data['outputs']
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'EngineKey':
        """Inverse of ``to_dict``; raises ``ValueError`` naming the missing or wrong field.

        Every field's JSON type is checked (a hand-edited or truncated sidecar must read as
        "unusable", never reach the engine or raise ``TypeError``).
        """
        if not isinstance(data, dict):
            raise ValueError(f'engine key is not a mapping but {type(data).__name__}')
        data = dict(data)
        version = data.get('format_version', 1)
        if version != KEY_FORMAT_VERSION:
            raise ValueError(f'engine key format {version!r} (written by another '
                             f'seg_perception version), this one reads {KEY_FORMAT_VERSION}')
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f'engine key has unknown field(s) {", ".join(unknown)}')
        for name, kind in _KEY_FIELD_TYPES.items():
            if name in data:
                _expect(data[name], kind, f'engine key field {name}')
        shapes = data.get('input_shapes')
        if not isinstance(shapes, dict) or not shapes or not all(
                _is_int_list(shape) for shape in shapes.values()):
            raise ValueError(f'engine key field input_shapes must map tensor names to lists '
                             f'of integers, got {shapes!r}')
        data['input_shapes'] = tuple((name, tuple(shape)) for name, shape in shapes.items())
        profile = data.get('batch_profile', [1, 1, 1])
        if not _is_int_list(profile) or len(profile) != 3:
            raise ValueError(f'engine key field batch_profile must be [min, opt, max] '
                             f'integers, got {profile!r}')
        data['batch_profile'] = tuple(profile)
        for name in ('fp32_layers', 'outputs'):
            items = data.get(name, [])
            if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
                raise ValueError(f'engine key field {name} must be a list of strings, got '
                                 f'{items!r}')
            data[name] = tuple(items)
        try:
            return cls(**data)
        except TypeError as error:
            raise ValueError(f'engine key is malformed: {error}') from None

    def digest(self) -> str:
        """sha256 of the key's canonical JSON: equal keys give equal digests on any machine."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(canonical.encode('utf-8')).hexdigest()

    def differences(self, other: 'EngineKey') -> List[str]:
        """Human-readable ``field: built for X, wanted Y`` lines (``self`` = built)."""
        mine, theirs = ({'outputs': 'all', **key.to_dict()} for key in (self, other))
        return [f'{name}: engine built for {mine[name]!r}, wanted {theirs.get(name)!r}'
                for name in sorted(mine) if mine[name] != theirs.get(name)]


#: JSON type of the key's scalar fields (``True`` is not an integer here).
_KEY_FIELD_TYPES = {'onnx_sha256': str, 'tensorrt_version': str, 'gpu_name': str,
                    'compute_capability': str, 'precision': str, 'calibration_sha256': str,
                    'strongly_typed': bool, 'gpu_multiprocessors': int,
                    'gpu_memory_gib': int, 'tf32': bool, 'format_version': int}
_TYPE_WORDS = {str: 'a string', bool: 'true or false', int: 'an integer', dict: 'an object'}


def _expect(value: Any, kind: type, what: str) -> None:
    """Raise ``ValueError`` unless ``value`` is of JSON type ``kind`` (bools are not ints)."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f'{what} must be {_TYPE_WORDS[kind]}, got {value!r}')


def _is_int_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


@dataclass(frozen=True)
class CacheDecision:
    """What to do with a cached engine.

    Attributes:
        action: ``use`` (load it), ``build`` (rebuild from the ONNX) or ``fail`` (no-build
            mode and the engine cannot be used).
        reason: Why, in words fit for a log line or an error message.
    """

    action: str
    reason: str

    @property
    def use(self) -> bool:
        return self.action == ACTION_USE


@dataclass(frozen=True)
class Sidecar:
    """Contents of ``<engine>.json``."""

    key: EngineKey
    engine_sha256: str
    engine_bytes: int
    created: str = ''
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {'key': self.key.to_dict(), 'key_digest': self.key.digest(),
                'engine_sha256': self.engine_sha256, 'engine_bytes': self.engine_bytes,
                'created': self.created, 'extra': dict(self.extra)}


class SidecarError(ValueError):
    """A sidecar file is unreadable, not JSON or incomplete."""


def sidecar_path(engine_path: str) -> str:
    return engine_path + SIDECAR_SUFFIX


def read_sidecar(engine_path: str) -> Sidecar:
    """Read and validate ``<engine>.json``; raises ``SidecarError`` saying what is wrong."""
    path = sidecar_path(engine_path)
    try:
        with open(path, 'r', encoding='utf-8') as stream:
            data = json.load(stream)
    except OSError as error:
        raise SidecarError(f'cannot read {path}: {error.strerror or error}') from None
    except ValueError as error:
        raise SidecarError(f'{path} is not valid JSON ({error})') from None
    if not isinstance(data, dict):
        raise SidecarError(f'{path} does not hold a JSON object')
    missing = [k for k in ('key', 'key_digest', 'engine_sha256', 'engine_bytes') if k not in data]
    if missing:
        raise SidecarError(f'{path} lacks {", ".join(missing)}')
    try:
        _expect(data['key_digest'], str, 'key_digest')
        _expect(data['engine_sha256'], str, 'engine_sha256')
        _expect(data['engine_bytes'], int, 'engine_bytes')
        _expect(data.get('created', ''), str, 'created')
        _expect(data.get('extra') or {}, dict, 'extra')
        key = EngineKey.from_dict(data['key'])
    except ValueError as error:
        raise SidecarError(f'{path}: {error}') from None
    if key.digest() != data['key_digest']:
        raise SidecarError(f'{path}: key digest does not match its key (edited or corrupt)')
    return Sidecar(key=key, engine_sha256=data['engine_sha256'],
                   engine_bytes=data['engine_bytes'], created=data.get('created', ''),
                   extra=dict(data.get('extra') or {}))


def decide(engine_path: str, wanted_key: EngineKey, force_rebuild: bool = False,
           allow_build: bool = True) -> CacheDecision:
    """Decide whether the engine at ``engine_path`` may be loaded for ``wanted_key``.

    Args:
        engine_path: Path of the ``.engine`` file (it may not exist).
        wanted_key: Key of the engine this machine and model need now.
        force_rebuild: Rebuild even if the cached engine matches.
        allow_build: False in no-build mode: every case that would rebuild returns ``fail``
            with the reason and what to run instead.

    Returns:
        A ``CacheDecision``. ``use`` only when the sidecar exists, parses, its key equals
        ``wanted_key`` and the engine file's size and checksum equal those recorded.
    """
    if force_rebuild and not allow_build:
        raise ValueError('force_rebuild and no-build mode (allow_build=False) exclude each other')
    decision = _inspect(engine_path, wanted_key, force_rebuild)
    if decision.use or allow_build:
        return decision
    return CacheDecision(ACTION_FAIL, f'{decision.reason}; engine building is disabled, build '
                                      'it with `seg-perception build-engine` or allow building')


def _inspect(engine_path: str, wanted_key: EngineKey, force_rebuild: bool) -> CacheDecision:
    if force_rebuild:
        return CacheDecision(ACTION_BUILD, 'rebuild forced')
    if not os.path.isfile(engine_path):
        return CacheDecision(ACTION_BUILD, f'no engine at {engine_path}'
                                           f'{_other_engines(engine_path, wanted_key)}')
    if not os.path.isfile(sidecar_path(engine_path)):
        return CacheDecision(ACTION_BUILD, f'{engine_path} has no sidecar '
                                           f'{os.path.basename(sidecar_path(engine_path))}: '
                                           'what it was built for is unknown, so it is not loaded')
    try:
        sidecar = read_sidecar(engine_path)
    except SidecarError as error:
        return CacheDecision(ACTION_BUILD, f'sidecar unusable: {error}')
    if sidecar.key != wanted_key:
        changes = '; '.join(sidecar.key.differences(wanted_key))
        return CacheDecision(ACTION_BUILD, f'{engine_path} does not match ({changes})')
    size = os.path.getsize(engine_path)
    if size != sidecar.engine_bytes or file_sha256(engine_path) != sidecar.engine_sha256:
        return CacheDecision(ACTION_BUILD, f'{engine_path} changed since it was built '
                                           '(truncated or replaced): checksum differs')
    return CacheDecision(ACTION_USE, f'cached engine {engine_path} matches')


def _other_engines(engine_path: str, wanted_key: EngineKey, shown: int = 3) -> str:
    """``; other engines of this model here: NAME (field: built for X, wanted Y), ...``: one
    built with other options (``build-engine --fp32-layers ...``, other outputs) sits next to
    the missing one (names hold key digests); how it differs says what to pass to use it."""
    folder = os.path.dirname(os.path.abspath(engine_path))
    base = os.path.basename(engine_path)
    prefix = base.split('.', 1)[0] + '.'
    notes = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
        if name == base or not name.startswith(prefix) or not name.endswith(ENGINE_SUFFIX):
            continue
        try:
            key = read_sidecar(os.path.join(folder, name)).key
        except SidecarError:
            continue
        notes.append(f'{name} ({"; ".join(key.differences(wanted_key))})')
    if not notes:
        return ''
    more = f' and {len(notes) - shown} more' if len(notes) > shown else ''
    return f'; other engines of this model here: {", ".join(notes[:shown])}{more}'


def write_engine(engine_path: str, engine_data: Any, key: EngineKey,
                 extra: Optional[Dict[str, Any]] = None) -> Sidecar:
    """Store a serialized engine and its sidecar atomically.

    Args:
        engine_path: Destination ``.engine`` path (directories are created).
        engine_data: The serialized engine: ``bytes`` or any buffer (TensorRT's
            ``IHostMemory`` supports the buffer protocol).
        key: The key the engine was built for.
        extra: Free-form provenance stored in the sidecar (build time, options).

    Returns:
        The sidecar that was written.
    """
    view = memoryview(engine_data).cast('B')
    digest = hashlib.sha256(view).hexdigest()
    # The old sidecar goes first: an old sidecar next to a half-replaced engine must never
    # exist, even though the checksum would also catch it.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sidecar_path(engine_path))
    with atomic_open(engine_path, 'wb') as stream:
        for start in range(0, len(view), _CHUNK_BYTES):
            stream.write(view[start:start + _CHUNK_BYTES])
    sidecar = Sidecar(key=key, engine_sha256=digest, engine_bytes=len(view),
                      created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                      extra=dict(extra or {}))
    atomic_write_text(sidecar_path(engine_path), json.dumps(sidecar.to_dict(), indent=2) + '\n')
    return sidecar


def remove_engine(engine_path: str) -> None:
    """Delete an engine and its sidecar (sidecar first). Missing files are fine."""
    for path in (sidecar_path(engine_path), engine_path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def slug(text: str) -> str:
    """``NVIDIA GeForce RTX 4090`` -> ``nvidia-geforce-rtx-4090`` (file-name safe)."""
    return re.sub(r'[^a-z0-9.]+', '-', text.lower()).strip('-') or 'unknown'


def engine_file_name(onnx_file: str, precision: str, batch: int, key_digest: str) -> str:
    """``model.onnx`` -> ``model.fp16.b1.<key digest[:12]>.engine``.

    The key's digest is in the name, so engines built with other options (FP32 layers,
    calibration images, ONNX, outputs), TensorRT versions or GPUs never overwrite each other.
    """
    stem = os.path.splitext(os.path.basename(onnx_file))[0]
    return f'{stem}.{precision}.b{int(batch)}.{key_digest[:12]}{ENGINE_SUFFIX}'


def user_cache_dir() -> str:
    """``$XDG_CACHE_HOME/seg_perception/engines`` or ``~/.cache/seg_perception/engines``."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'seg_perception', 'engines')


def default_engine_path(package_dir: str, onnx_file: str, precision: str, batch: int,
                        package_name: str, onnx_sha256: str, key_digest: str) -> str:
    """Where an engine lives by default.

    Next to the model package when that directory is writable, else in the user cache
    (a package installed under ``/opt/ros`` is read-only), in a folder named after the
    package and its ONNX checksum so two packages never share an engine.
    """
    name = engine_file_name(onnx_file, precision, batch, key_digest)
    package_dir = os.path.abspath(package_dir)
    if os.path.isdir(package_dir) and os.access(package_dir, os.W_OK | os.X_OK):
        return os.path.join(package_dir, name)
    return os.path.join(user_cache_dir(), f'{slug(package_name)}-{onnx_sha256[:12]}', name)


def timing_cache_path(engine_path: str, tensorrt_version: str, gpu_name: str) -> str:
    """Timing caches are per GPU and TensorRT version; keep one per pair next to the engine."""
    return os.path.join(os.path.dirname(os.path.abspath(engine_path)),
                        f'timing.{slug(gpu_name)}.trt{tensorrt_version}.cache')
