"""Engine cache: key digest, sidecar round trip, every mismatch decision, atomic writes."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from seg_perception.runtime import engine_cache
from seg_perception.runtime.engine_cache import (
    CacheDecision,
    decide,
    default_engine_path,
    EngineKey,
    read_sidecar,
    sidecar_path,
    SidecarError,
    write_engine,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_BYTES = b'fake serialized engine ' * 100


def make_key(**changes) -> EngineKey:
    fields = dict(onnx_sha256='a' * 64, tensorrt_version='10.3.0', gpu_name='Orin',
                  compute_capability='8.7', precision='fp16',
                  input_shapes=(('image', (1, 3, 64, 128)),), batch_profile=(1, 1, 1),
                  gpu_multiprocessors=8, gpu_memory_gib=7)
    fields.update(changes)
    return EngineKey(**fields)


# One alternative value for every field of the key: each must change the digest.
FIELD_CHANGES = {
    'onnx_sha256': 'b' * 64,
    'tensorrt_version': '8.5.2',
    'gpu_name': 'NVIDIA GeForce RTX 4090',
    'compute_capability': '8.9',
    'precision': 'int8',
    'input_shapes': (('image', (2, 3, 64, 128)),),
    'batch_profile': (1, 2, 4),
    'fp32_layers': ('/head/*',),
    'calibration_sha256': 'c' * 64,
    'strongly_typed': True,
    'gpu_multiprocessors': 16,
    'gpu_memory_gib': 61,
    'tf32': True,
    'outputs': ('semantic', 'instance', 'panoptic', 'instance_score'),
    'format_version': engine_cache.KEY_FORMAT_VERSION + 1,
}


def test_every_key_field_is_covered_by_this_test():
    assert set(FIELD_CHANGES) == {f.name for f in dataclasses.fields(EngineKey)}


def test_digest_is_stable_and_order_independent():
    key = make_key(input_shapes=(('image', (1, 3, 64, 128)), ('center_threshold', (1,))))
    same = make_key(input_shapes=[('center_threshold', [1]), ('image', [1, 3, 64, 128])])
    assert key == same
    assert key.digest() == same.digest()
    # Pinned: a digest that changes between releases would rebuild every user's engine.
    assert make_key().digest() == make_key().digest()
    assert len(key.digest()) == 64


@pytest.mark.parametrize('field_name', sorted(FIELD_CHANGES))
def test_every_field_changes_the_digest(field_name):
    base = make_key()
    changed = make_key(**{field_name: FIELD_CHANGES[field_name]})
    assert changed.digest() != base.digest()
    assert any(line.startswith(field_name) for line in base.differences(changed))


def test_key_rejects_bad_precision():
    with pytest.raises(ValueError, match='fp32, fp16, int8'):
        make_key(precision='half')


def test_sidecar_round_trip(tmp_path):
    engine = str(tmp_path / 'model.fp16.b1.engine')
    key = make_key(fp32_layers=('/head/*',), calibration_sha256='d' * 64)
    written = write_engine(engine, ENGINE_BYTES, key, extra={'build_seconds': 12.5})
    assert open(engine, 'rb').read() == ENGINE_BYTES
    assert os.path.isfile(engine + '.json')
    read = read_sidecar(engine)
    assert read.key == key
    assert read.engine_bytes == len(ENGINE_BYTES)
    assert read.engine_sha256 == engine_cache.file_sha256(engine)
    assert read.extra == {'build_seconds': 12.5}
    assert read == written
    assert decide(engine, key) == CacheDecision('use', f'cached engine {engine} matches')


def test_write_accepts_buffers(tmp_path):
    engine = str(tmp_path / 'm.engine')
    write_engine(engine, memoryview(bytearray(ENGINE_BYTES)), make_key())
    assert decide(engine, make_key()).use


@pytest.mark.parametrize('field_name', sorted(set(FIELD_CHANGES) - {'format_version'}))
def test_mismatch_rebuilds_with_reason_or_fails_in_no_build_mode(tmp_path, field_name):
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key())
    wanted = make_key(**{field_name: FIELD_CHANGES[field_name]})
    decision = decide(engine, wanted)
    assert decision.action == 'build'
    assert field_name in decision.reason
    assert 'does not match' in decision.reason
    failed = decide(engine, wanted, allow_build=False)
    assert failed.action == 'fail'
    assert field_name in failed.reason and 'build-engine' in failed.reason


def test_trt_version_mismatch_reason_names_both_versions(tmp_path):
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key(tensorrt_version='8.5.2'))
    reason = decide(engine, make_key(tensorrt_version='10.3.0')).reason
    assert "'8.5.2'" in reason and "'10.3.0'" in reason


def test_missing_engine_and_missing_sidecar(tmp_path):
    engine = str(tmp_path / 'model.engine')
    decision = decide(engine, make_key())
    assert decision.action == 'build' and 'no engine' in decision.reason
    assert decide(engine, make_key(), allow_build=False).action == 'fail'
    with open(engine, 'wb') as stream:
        stream.write(ENGINE_BYTES)
    decision = decide(engine, make_key())
    assert decision.action == 'build' and 'no sidecar' in decision.reason
    assert decide(engine, make_key(), allow_build=False).action == 'fail'


@pytest.mark.parametrize('content, expected', [
    ('{not json', 'not valid JSON'),
    ('[1, 2]', 'JSON object'),
    ('{"key": {}}', 'lacks key_digest, engine_sha256, engine_bytes'),
])
def test_corrupt_sidecar_rebuilds_with_reason(tmp_path, content, expected):
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key())
    with open(sidecar_path(engine), 'w') as stream:
        stream.write(content)
    decision = decide(engine, make_key())
    assert decision.action == 'build'
    assert 'sidecar unusable' in decision.reason and expected in decision.reason
    with pytest.raises(SidecarError, match=expected):
        read_sidecar(engine)


@pytest.mark.parametrize('where, field, value, expected', [
    ('top', 'engine_bytes', 'abc', "engine_bytes must be an integer, got 'abc'"),
    ('top', 'engine_bytes', True, 'engine_bytes must be an integer, got True'),
    ('top', 'engine_sha256', None, 'engine_sha256 must be a string'),
    ('top', 'key_digest', 5, 'key_digest must be a string'),
    ('top', 'extra', 'notes', 'extra must be an object'),
    ('top', 'created', 17, 'created must be a string'),
    ('top', 'key', [1, 2], 'engine key is not a mapping but list'),
    ('key', 'input_shapes', {'image': 5}, 'input_shapes must map tensor names to lists'),
    ('key', 'input_shapes', {'image': ['1', 3]}, 'input_shapes must map tensor names to lists'),
    ('key', 'input_shapes', [], 'input_shapes must map tensor names to lists'),
    ('key', 'batch_profile', 'abc', 'batch_profile must be [min, opt, max] integers'),
    ('key', 'batch_profile', [1, 2], 'batch_profile must be [min, opt, max] integers'),
    ('key', 'fp32_layers', '/postprocess/', 'fp32_layers must be a list of strings'),
    ('key', 'precision', 16, 'precision must be a string, got 16'),
    ('key', 'precision', 'fp8', "engine precision 'fp8' is not one of"),
    ('key', 'strongly_typed', 'false', "strongly_typed must be true or false, got 'false'"),
    ('key', 'format_version', '2', "engine key format '2' (written by another"),
    ('key', 'format_version', 1, 'engine key format 1 (written by another seg_perception '
                                 'version), this one reads 2'),
    ('key', 'gpu_name', None, 'gpu_name must be a string'),
    ('key', 'surprise', 1, 'unknown field(s) surprise'),
    ('key', 'onnx_sha256', KeyError, 'missing 1 required positional argument'),
])
def test_malformed_sidecar_is_a_mismatch_not_a_crash(tmp_path, where, field, value, expected):
    """Issue 26: a hand-edited sidecar rebuilds (or fails with the reason when builds are
    off) instead of raising ValueError / TypeError at start-up."""
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key())
    data = json.loads(open(sidecar_path(engine)).read())
    target = data if where == 'top' else data['key']
    if value is KeyError:
        del target[field]
    else:
        target[field] = value
    with open(sidecar_path(engine), 'w') as stream:
        json.dump(data, stream)
    decision = decide(engine, make_key())
    assert decision.action == 'build'
    assert decision.reason.startswith('sidecar unusable: ') and expected in decision.reason
    failed = decide(engine, make_key(), allow_build=False)
    assert failed.action == 'fail' and expected in failed.reason
    assert 'build-engine' in failed.reason and '\n' not in failed.reason
    with pytest.raises(SidecarError, match=re.escape(expected)):
        read_sidecar(engine)


def test_hand_edited_sidecar_key_is_detected(tmp_path):
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key(tensorrt_version='8.5.2'))
    data = json.loads(open(sidecar_path(engine)).read())
    data['key']['tensorrt_version'] = '10.3.0'   # lie about the version, keep the digest
    with open(sidecar_path(engine), 'w') as stream:
        json.dump(data, stream)
    decision = decide(engine, make_key(tensorrt_version='10.3.0'))
    assert decision.action == 'build' and 'digest does not match' in decision.reason


def test_replaced_or_truncated_engine_is_not_loaded(tmp_path):
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key())
    with open(engine, 'wb') as stream:
        stream.write(ENGINE_BYTES[:-1] + b'X')       # same size, different bytes
    assert 'checksum differs' in decide(engine, make_key()).reason
    with open(engine, 'wb') as stream:
        stream.write(ENGINE_BYTES[:10])              # truncated
    assert decide(engine, make_key()).action == 'build'


def test_force_rebuild(tmp_path):
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key())
    assert decide(engine, make_key(), force_rebuild=True) == CacheDecision('build',
                                                                           'rebuild forced')
    with pytest.raises(ValueError, match='exclude each other'):
        decide(engine, make_key(), force_rebuild=True, allow_build=False)


def test_rewrite_replaces_engine_and_sidecar(tmp_path):
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, ENGINE_BYTES, make_key(tensorrt_version='8.5.2'))
    write_engine(engine, b'new engine', make_key())
    assert decide(engine, make_key()).use
    assert decide(engine, make_key(tensorrt_version='8.5.2')).action == 'build'
    engine_cache.remove_engine(engine)
    assert os.listdir(tmp_path) == []


CRASH_SCRIPT = textwrap.dedent("""
    import resource, sys
    sys.path.insert(0, {root!r})
    from seg_perception.runtime.engine_cache import EngineKey, write_engine
    key = EngineKey('a' * 64, '10.3.0', 'Orin', '8.7', 'fp16', (('image', (1, 3, 8, 8)),))
    # Files may not grow past 1 MiB: the kernel kills us (SIGXFSZ) in the middle of writing
    # the 4 MiB engine, like a power cut or an OOM kill during a build.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    write_engine({engine!r}, bytes(4 << 20), key)
    print('not reached')
""")


@pytest.mark.skipif(sys.platform != 'linux', reason='uses RLIMIT_FSIZE / SIGXFSZ (Linux)')
@pytest.mark.parametrize('had_old_engine', [False, True])
def test_crash_mid_write_leaves_nothing_that_looks_valid(tmp_path, had_old_engine):
    engine = str(tmp_path / 'model.engine')
    if had_old_engine:
        write_engine(engine, ENGINE_BYTES, make_key(tensorrt_version='8.5.2'))
    script = CRASH_SCRIPT.format(root=ROOT, engine=engine)
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True)
    assert result.returncode != 0 and 'not reached' not in result.stdout
    assert not os.path.exists(sidecar_path(engine))
    if had_old_engine:
        assert open(engine, 'rb').read() == ENGINE_BYTES   # untouched old file, no sidecar
    else:
        assert not os.path.exists(engine)
    wanted = EngineKey('a' * 64, '10.3.0', 'Orin', '8.7', 'fp16', (('image', (1, 3, 8, 8)),))
    assert decide(engine, wanted).action == 'build'


def test_default_engine_path_next_to_package_or_user_cache(tmp_path, monkeypatch):
    package = tmp_path / 'enet'
    package.mkdir()
    path = default_engine_path(str(package), 'model.onnx', 'fp16', 2, 'enet', 'f' * 64,
                               '0123456789abcdef')
    assert path == str(package / 'model.fp16.b2.0123456789ab.engine')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    os.chmod(package, 0o555)
    try:
        if os.access(str(package), os.W_OK):
            pytest.skip('running as root: a read-only directory is still writable')
        path = default_engine_path(str(package), 'model.onnx', 'int8', 1, 'ENet Panoptic',
                                   'f' * 64, 'a' * 64)
    finally:
        os.chmod(package, 0o755)
    assert path == str(tmp_path / 'cache' / 'seg_perception' / 'engines'
                       / 'enet-panoptic-ffffffffffff' / 'model.int8.b1.aaaaaaaaaaaa.engine')


def test_engines_of_other_options_never_overwrite_each_other_and_are_named(tmp_path):
    """Issue 27 item 3: the file name holds the key, and a missing engine's reason says how
    the engines next to it differ (which options to pass to use one of them)."""
    plain, pinned = make_key(), make_key(fp32_layers=('/network/decoder*', '/postprocess/'))
    paths = [default_engine_path(str(tmp_path), 'model.onnx', 'fp16', 1, 'enet', 'f' * 64,
                                 key.digest()) for key in (plain, pinned)]
    assert paths[0] != paths[1]
    write_engine(paths[1], ENGINE_BYTES, pinned)
    decision = decide(paths[0], plain, allow_build=False)
    assert decision.action == 'fail'
    name = os.path.basename(paths[1])
    assert f"no engine at {paths[0]}; other engines of this model here: {name} (fp32_layers: " \
           "engine built for ['/network/decoder*', '/postprocess/'], wanted [])" in decision.reason
    write_engine(paths[0], b'plain engine', plain)
    assert decide(paths[0], plain).use and decide(paths[1], pinned).use


def test_timing_cache_path_names_gpu_and_version(tmp_path):
    path = engine_cache.timing_cache_path(str(tmp_path / 'm.engine'), '10.3.0', 'Orin (nvgpu)')
    assert os.path.basename(path) == 'timing.orin-nvgpu.trt10.3.0.cache'
