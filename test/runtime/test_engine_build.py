"""Engine builds against stand-ins of TensorRT 10 / 11 and cuda-python (no GPU needed).

``fake_tensorrt`` parses the real zoo ONNX graphs into networks shaped like onnx-tensorrt's
(node-named layers, ``ONNXTRT_*`` helpers, constants, shape tensors, TopK with int outputs)
and records what each build was asked for; ``fake_cuda`` is a host-memory GPU. What only a
real TensorRT can show (its own layer names, the built engine) is checked in
``test_tensorrt.py`` where TensorRT exists.
"""

import os
import re
import sys

import fake_cuda
import fake_tensorrt
import numpy as np
import pytest

from seg_perception.manifest import ModelManifest
from seg_perception.runtime.base import BackendError
from seg_perception.runtime.engine_builder import build_serialized_network
from seg_perception.runtime.engine_cache import decide, write_engine
from seg_perception.runtime.engine_options import (
    BuildOptions,
    make_engine_key,
    POSTPROCESS_LAYERS,
    probe_platform,
)
from seg_perception.runtime.layer_precision import is_parser_helper, keep_layers_in_fp32

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


@pytest.fixture(scope='module')
def zoo_networks():
    """Parser-shaped networks of both zoo graphs, parsed once (read-only for the tests)."""
    trt = fake_tensorrt.make_module()
    networks = {}
    for name, package in ZOO.items():
        network = trt.Builder(trt.Logger()).create_network(0)
        trt.OnnxParser(network, None).parse_from_file(os.path.join(package, 'model.onnx'))
        networks[name] = network
    return trt, networks


def _layers(network):
    return [network.get_layer(i) for i in range(network.num_layers)]


def _reset(network):
    for layer in _layers(network):
        layer.reset_precision()
        layer.output_types.clear()


@pytest.mark.parametrize('name', sorted(ZOO))
def test_postprocessing_pinning_follows_polygraphy(zoo_networks, name):
    trt, networks = zoo_networks
    network = networks[name]
    _reset(network)
    pinning = keep_layers_in_fp32(trt, network, (POSTPROCESS_LAYERS,))
    pinned = set(pinning.pinned)
    layers = _layers(network)
    for layer in layers:
        in_post = layer.name.startswith(POSTPROCESS_LAYERS)
        if layer.name in pinned:
            assert layer.precision is trt.float32 and layer.precision_is_set
            assert set(layer.output_types.values()) == {trt.float32}
            assert layer.type != trt.LayerType.CONSTANT, layer.name
            assert all(layer.get_output(i).dtype in (trt.float32, trt.float16)
                       and layer.get_output(i).is_execution_tensor
                       for i in range(layer.num_outputs)), layer.name
            assert in_post or is_parser_helper(layer.name), layer.name
        else:
            assert not layer.precision_is_set
    # The grouping's matrix products (squared distances ~1e5) are the reason for the rule.
    matmuls = [x.name for x in layers if x.type == trt.LayerType.MATRIX_MULTIPLY
               and x.name.startswith(POSTPROCESS_LAYERS)]
    assert matmuls and set(matmuls) <= pinned
    # Constants and the TopK behind ArgMax / ArgMin (int32 indices) are left alone.
    left = {x.name: x for x in layers if x.name in pinning.left}
    assert any(x.type == trt.LayerType.CONSTANT for x in left.values())
    assert any(x.type == trt.LayerType.TOPK for x in left.values())
    # The parser's broadcast shuffles inside /postprocess/ are pinned with their nodes.
    assert pinning.helpers and all(h.startswith('ONNXTRT_Broadcast') for h in pinning.helpers)
    assert 'parser helpers' in pinning.summary() and matmuls[0] in pinning.summary()


def _chain(trt):
    """/network/conv -> ONNXTRT_a -> ONNXTRT_b -> /postprocess/Mul; ONNXTRT_c between
    /network layers; ONNXTRT_d a cast to int32 behind /postprocess/Mul."""
    from fake_tensorrt import Layer, Network, Tensor
    network = Network(0)
    tensors = {n: Tensor(n, trt.float32) for n in ('x', 'conv', 'a', 'b', 'mul', 'c', 'relu')}
    tensors['d'] = Tensor('d', trt.int32)
    for name, kind, inputs, output in (
            ('/network/conv', 'CONVOLUTION', ['x'], 'conv'),
            ('ONNXTRT_a', 'SHUFFLE', ['conv'], 'a'), ('ONNXTRT_b', 'SHUFFLE', ['a'], 'b'),
            ('/postprocess/Mul', 'ELEMENTWISE', ['b'], 'mul'),
            ('ONNXTRT_d', 'CAST', ['mul'], 'd'),
            ('ONNXTRT_c', 'SHUFFLE', ['conv'], 'c'),
            ('/network/relu', 'ACTIVATION', ['c'], 'relu')):
        network.layers.append(Layer(trt, name, kind, [tensors[i] for i in inputs],
                                    [tensors[output]]))
    return network


def test_parser_helpers_follow_their_neighbours_through_chains():
    trt = fake_tensorrt.make_module()
    pinning = keep_layers_in_fp32(trt, _chain(trt), ('/postprocess/',))
    assert pinning.pinned == ('ONNXTRT_a', 'ONNXTRT_b', '/postprocess/Mul')
    assert pinning.helpers == ('ONNXTRT_a', 'ONNXTRT_b') and pinning.left == ('ONNXTRT_d',)


def test_patterns_matching_only_constants_or_nothing_fail_with_names(zoo_networks):
    trt, networks = zoo_networks
    network = networks['enet_panoptic']
    with pytest.raises(BackendError, match=r'/postprocess/Constant_\* match no layer that can '
                                           r'be kept in FP32 .* named like: /Sub'):
        keep_layers_in_fp32(trt, network, ('/postprocess/Constant_*',))
    with pytest.raises(BackendError, match=r'\*LogSoftmax\*, /head/ match no layer'):
        keep_layers_in_fp32(trt, network, ('*LogSoftmax*', '/head/'))
    _reset(network)
    assert keep_layers_in_fp32(trt, network, ('*LogSoftmax*',),
                               optional=('*LogSoftmax*',)).pinned == ()


def documented_patterns():
    """Every ``--fp32-layers`` pattern (and ``engine_fp32_layers`` value) the docs show."""
    found = []
    for name in ['README.md'] + [os.path.join('docs', f) for f in os.listdir(
            os.path.join(ROOT, 'docs')) if f.endswith('.md')]:
        text = open(os.path.join(ROOT, name), encoding='utf-8').read()
        for arguments in re.findall(r"--fp32-layers((?:\s+'[^']*')+)", text):
            found += [(name, p) for p in re.findall(r"'([^']*)'", arguments)]
        for value in re.findall(r'engine_fp32_layers:=?\s*"?\'?([^"\'\n]+)', text):
            found += [(name, p) for p in value.split()]
    return [(name, p) for name, p in found if not (p.isupper() or p == '...')]  # PATTERN ...


def test_docs_show_fp32_patterns():
    assert len(documented_patterns()) >= 2


@pytest.mark.parametrize('doc, pattern', documented_patterns())
@pytest.mark.parametrize('model', sorted(ZOO))
def test_every_documented_fp32_pattern_pins_layers_of_both_zoo_models(zoo_networks, doc,
                                                                      pattern, model):
    trt, networks = zoo_networks
    network = networks[model]
    _reset(network)
    pinning = keep_layers_in_fp32(trt, network, (pattern,))
    named = [name for name in pinning.pinned if not is_parser_helper(name)]
    assert named and all(name.startswith('/network/') for name in named), (doc, pattern)


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


def test_build_runs_on_the_device_the_key_describes(monkeypatch, tmp_path):
    """Issue 27 item 6: device_index N builds (and calibrates) on N, not on device 0."""
    from seg_perception.runtime.tensorrt_backend import TensorRTBackend
    cudart = fake_cuda.install(monkeypatch, fake_cuda.FakeCudart(
        'ok', devices=2, per_device={1: {'name': b'NVIDIA RTX A2000', 'major': 8, 'minor': 6,
                                         'multiProcessorCount': 26}}))
    trt = fake_tensorrt.make_module(cudart)
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    manifest = ModelManifest.load(ZOO['enet_panoptic'])
    lines = []
    backend = TensorRTBackend(manifest, ZOO['enet_panoptic'], engine_path=str(
        tmp_path / 'model.engine'), device_index=1, progress=lines.append)
    record = trt.builds[-1]
    assert record['builder_device'] == 1 and record['device'] == 1
    assert (backend.key.gpu_name, backend.key.gpu_multiprocessors) == ('NVIDIA RTX A2000', 26)
    assert backend.info.device == 'cuda:1'
    images = np.zeros((1, 3, manifest.input_height, manifest.input_width), np.float32)
    images[:, 0, :, :100] = 255
    outputs = backend.run(images, 0.1)
    assert outputs['semantic'][0, :, :100].all() and not outputs['semantic'][0, :, 100:].any()
    backend.close()
    device_work = [call for call in cudart.calls if call[2] in (
        'cudaMalloc', 'cudaMallocHost', 'cudaStreamCreate', 'cudaMemcpyAsync', 'cudaFree')]
    assert device_work and {call[1] for call in device_work} == {1}
