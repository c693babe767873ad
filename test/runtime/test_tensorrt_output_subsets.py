"""The TensorRT backend asked for fewer graph outputs, on the TensorRT / cuda-python
stand-ins (``fake_tensorrt`` parses the real ONNX file it is given, so an engine built
from a pruned graph lacks the pruned outputs).

The engine key names the outputs, so a full and a pruned engine never share a file; a
cached full engine stands in for a missing pruned one rather than a build starting (the
engine ``build-engine`` made keeps a node with ``allow_engine_build`` false running).
"""

import os

import fake_tensorrt
import numpy as np
import pytest

from seg_perception import cli
from seg_perception.manifest import ModelManifest
from seg_perception.pipeline.config import NodeConfig
from seg_perception.pipeline.graph_outputs import needed_graph_outputs
from seg_perception.runtime.base import BackendError
from seg_perception.runtime.engine_cache import EngineKey, read_sidecar
from seg_perception.runtime.select import create_backend
from seg_perception.runtime.tensorrt_backend import TensorRTBackend

pytest.importorskip('onnx')
pytest.importorskip('torch')

WITHOUT_CONFIDENCE = ('semantic', 'instance', 'panoptic', 'instance_score')


@pytest.fixture
def package(writable_lively_enet_panoptic):
    return writable_lively_enet_panoptic


@pytest.fixture
def trt(monkeypatch):
    return fake_tensorrt.install(monkeypatch)


def _backend(package, **options):
    return TensorRTBackend(ModelManifest.load(package), package, progress=lambda _: None,
                           **options)


def _engine_outputs(backend):
    return sorted(spec.name for spec in backend._specs if not spec.is_input)


def _image(backend):
    manifest = backend.manifest
    images = np.zeros((1, 3, manifest.input_height, manifest.input_width), np.float32)
    images[:, 0, :, :10] = 255.0
    return images


def test_pruned_engine_has_its_own_key_and_file(trt, package):
    pruned = _backend(package, outputs=WITHOUT_CONFIDENCE)
    full = _backend(package)
    assert len(trt.builds) == 2
    assert full.key.outputs == () and pruned.key.outputs == WITHOUT_CONFIDENCE
    assert full.key.digest() != pruned.key.digest()
    assert full.engine_path != pruned.engine_path
    assert os.path.dirname(full.engine_path) == os.path.dirname(pruned.engine_path)
    assert 'outputs' not in read_sidecar(full.engine_path).key.to_dict()
    sidecar = read_sidecar(pruned.engine_path)
    assert sidecar.key == pruned.key and sidecar.extra['onnx_file'] == 'model.pruned.onnx'
    assert 'confidence' in _engine_outputs(full)
    assert _engine_outputs(pruned) == sorted(WITHOUT_CONFIDENCE)
    result = pruned.run(_image(pruned), 0.2)
    assert tuple(result) == WITHOUT_CONFIDENCE == pruned.output_names
    np.testing.assert_array_equal(result['semantic'], full.run(_image(full), 0.2)['semantic'])
    assert 'pruned to semantic, instance, panoptic, instance_score' in pruned.info.detail
    # both stay cached: loading either again builds nothing
    for outputs in (None, WITHOUT_CONFIDENCE):
        again = _backend(package, outputs=outputs)
        assert again.decision.use
        again.close()
    assert len(trt.builds) == 2
    full.close()
    pruned.close()
    assert not [name for name in os.listdir(package) if name.endswith('.onnx')
                and name != 'model.onnx']


def test_key_outputs_round_trip_and_old_keys_keep_their_digest():
    base = dict(onnx_sha256='a' * 64, tensorrt_version='10.3.0', gpu_name='Orin',
                compute_capability='8.7', precision='fp16',
                input_shapes=(('image', (1, 3, 64, 128)),))
    full = EngineKey(**base)
    pruned = EngineKey(**base, outputs=list(WITHOUT_CONFIDENCE))
    assert EngineKey.from_dict(pruned.to_dict()) == pruned
    assert EngineKey.from_dict(full.to_dict()) == full
    assert full.to_dict() == {k: v for k, v in pruned.to_dict().items() if k != 'outputs'}
    assert "outputs: engine built for 'all', wanted ['semantic'," in \
        '; '.join(full.differences(pruned))
    with pytest.raises(ValueError, match='outputs must be a list of strings'):
        EngineKey.from_dict({**full.to_dict(), 'outputs': 'semantic'})


def test_semantic_only_engine_is_fed_no_center_threshold(trt, package):
    backend = _backend(package, outputs=('semantic',))
    assert backend.manifest.input_names == ('image',)
    assert sorted(spec.name for spec in backend._specs) == ['image', 'semantic']
    assert tuple(backend.run(_image(backend), 0.2)) == ('semantic',)
    backend.close()


def test_a_cached_full_engine_stands_in_for_a_missing_pruned_one(trt, package):
    assert cli.main(['build-engine', package, '--all-outputs']) == 0
    assert len(trt.builds) == 1
    lines = []
    for allow_build in (False, True):
        backend = TensorRTBackend(ModelManifest.load(package), package, progress=lines.append,
                                  outputs=WITHOUT_CONFIDENCE, allow_build=allow_build)
        assert backend.decision.use and backend.key.outputs == ()
        assert 'confidence' in _engine_outputs(backend)
        assert tuple(backend.run(_image(backend), 0.2)) == WITHOUT_CONFIDENCE
        assert 'with every output' in backend.info.detail
        backend.close()
    assert len(trt.builds) == 1
    assert 'using the cached one with every output' in lines[0] and 'force_rebuild' in lines[0]
    forced = _backend(package, outputs=WITHOUT_CONFIDENCE, force_rebuild=True)
    assert len(trt.builds) == 2 and forced.key.outputs == WITHOUT_CONFIDENCE
    forced.close()
    later = _backend(package, outputs=WITHOUT_CONFIDENCE, allow_build=False)
    assert later.decision.use and later.key.outputs == WITHOUT_CONFIDENCE
    later.close()


def test_no_build_mode_without_any_engine_names_the_pruned_one(trt, package):
    with pytest.raises(BackendError, match='engine building is disabled'):
        _backend(package, outputs=WITHOUT_CONFIDENCE, allow_build=False)


def test_explicit_engine_path_holds_the_engine_wanted_last(trt, package, tmp_path):
    path = str(tmp_path / 'mine.engine')
    _backend(package, engine_path=path).close()
    pruned = _backend(package, engine_path=path, outputs=WITHOUT_CONFIDENCE)
    assert pruned.decision.use and pruned.key.outputs == () and len(trt.builds) == 1
    pruned.close()


def test_without_onnx_the_engine_has_every_output(trt, package, monkeypatch):
    from seg_perception.runtime import tensorrt_backend
    monkeypatch.setattr(tensorrt_backend, 'onnx_available', lambda: False)
    backend = _backend(package, outputs=WITHOUT_CONFIDENCE)
    assert backend.key.outputs == () and 'confidence' in _engine_outputs(backend)
    assert tuple(backend.run(_image(backend), 0.2)) == WITHOUT_CONFIDENCE
    backend.close()


def test_the_node_builds_and_reuses_the_engine_of_its_outputs(trt, package):
    """As ``ros/segmentation.py`` creates it: default switches -> no confidence."""
    def node_backend(**parameters):
        config = NodeConfig.from_values({'backend': 'tensorrt', **parameters})
        backend, _ = create_backend(
            package, ModelManifest.load(package), backend=config.backend,
            device=config.device, precision=config.precision, **config.engine_options(),
            outputs=needed_graph_outputs(config.enabled_outputs))
        return backend
    default = node_backend()
    assert default.output_names == WITHOUT_CONFIDENCE == default.key.outputs
    default.close()
    with_confidence = node_backend(publish_confidence=True)
    assert 'confidence' in with_confidence.output_names and with_confidence.key.outputs == ()
    with_confidence.close()
    assert len(trt.builds) == 2
    node_backend(allow_engine_build=False).close()
    assert len(trt.builds) == 2
