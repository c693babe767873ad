"""Engine builds against stand-ins of TensorRT 10 / 11 and cuda-python (no GPU needed).

``fake_tensorrt`` parses the real zoo ONNX graphs into networks shaped like onnx-tensorrt's
(node-named layers, ``ONNXTRT_*`` helpers, constants, shape tensors, TopK with int outputs)
and records what each build was asked for; ``fake_cuda`` is a host-memory GPU. What only a
real TensorRT can show (its own layer names, the built engine) is checked in
``test_tensorrt.py`` where TensorRT exists.
"""

import os
import sys

import fake_cuda
import fake_tensorrt
import pytest

from seg_perception.manifest import ModelManifest
from seg_perception.runtime.base import BackendError
from seg_perception.runtime.engine_builder import build_serialized_network
from seg_perception.runtime.engine_cache import decide, write_engine
from seg_perception.runtime.engine_options import (
    BuildOptions,
    make_engine_key,
    probe_platform,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = {name: os.path.join(ROOT, 'seg_perception', 'zoo', name)
       for name in ('enet_panoptic', 'deeplabv3plus_mobilenetv3_panoptic')}


@pytest.fixture
def gpu(monkeypatch):
    """A fake cudart with two devices and a fake TensorRT 10.3 importable as ``tensorrt``."""
    cudart = fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('ok', devices=2))
    trt = fake_tensorrt.make_module(cudart)
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    return trt


def _fp16_build(trt, options=None, name='enet_panoptic'):
    package = ZOO[name]
    manifest = ModelManifest.load(package)
    lines = []
    serialized, matched = build_serialized_network(
        os.path.join(package, 'model.onnx'), manifest, options or BuildOptions(), lines.append)
    return bytes(serialized), matched, lines, trt.builds[-1]


def test_fp16_build_clears_tf32_and_obeys_the_fp32_pins(gpu):
    _, matched, lines, record = _fp16_build(gpu)
    assert 'TF32' not in record['flags']          # TensorRT turns it on by default
    assert {'FP16', 'OBEY_PRECISION_CONSTRAINTS'} <= set(record['flags'])
    assert record['pinned'] == matched and any('/postprocess/MatMul' in m for m in matched)
    assert any(line.startswith(f'keeping {len(matched)} layer(s) in FP32') for line in lines)
    _, _, _, record = _fp16_build(gpu, BuildOptions(precision='fp32', tf32=True))
    assert record['flags'] == ['TF32'] and record['pinned'] == []


def test_tensorrt_11_clears_tf32_too(monkeypatch):
    cudart = fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('ok'))
    trt = fake_tensorrt.make_module(cudart, version='11.0.0')
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    _, matched, _, record = _fp16_build(trt, BuildOptions(precision='fp32'))
    assert record['flags'] == [] and matched == []
    with pytest.raises(BackendError, match='strongly typed networks only'):
        _fp16_build(trt, BuildOptions(precision='fp16'))


def test_tf32_and_the_gpu_module_are_in_the_key(monkeypatch, gpu, tmp_path):
    manifest = ModelManifest.load(ZOO['enet_panoptic'])
    key = make_engine_key(manifest, 'a' * 64, probe_platform(0), BuildOptions())
    assert key.tf32 is False
    assert make_engine_key(manifest, 'a' * 64, probe_platform(0),
                           BuildOptions(tf32=True)).digest() != key.digest()
    engine = str(tmp_path / 'model.engine')
    write_engine(engine, b'engine built on an AGX Orin 64 GB', key)
    # An Orin Nano 8 GB reports the same name and compute capability as an AGX Orin.
    nano = fake_cuda.FakeCudart('ok', multiprocessors=4, memory=7 << 30)
    fake_cuda.install(monkeypatch, nano)
    nano_key = make_engine_key(manifest, 'a' * 64, probe_platform(0), BuildOptions())
    assert (nano_key.gpu_name, nano_key.compute_capability) == (key.gpu_name, '8.7')
    decision = decide(engine, nano_key)
    assert decision.action == 'build'
    assert 'gpu_multiprocessors: engine built for 8, wanted 4' in decision.reason
