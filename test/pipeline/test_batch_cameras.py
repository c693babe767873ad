"""pipeline/worker.py: ``batch_cameras`` auto / true / false resolved from the loaded backend
(issue 29 item 3), the parameter's values and messages, the diagnostics text, and the worker
batching only where it is in force."""

import os
import types

import pytest

from seg_perception.pipeline.config import ConfigError, NodeConfig, PARAMETERS_BY_NAME
from seg_perception.pipeline.diagnostics import build_report, ModelInfo
from seg_perception.pipeline.latest_frame import LatestFrameStore
from seg_perception.pipeline.worker import (
    BatchCameras,
    Frame,
    InferenceWorker,
    resolve_batch_cameras,
)
from seg_perception.runtime.base import BackendInfo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO_ENET = os.path.join(ROOT, 'seg_perception', 'zoo', 'enet_panoptic')


def loaded(name, device, batch=2):
    """A stand-in Segmenter: what ``resolve_batch_cameras`` reads of the loaded backend."""
    backend = types.SimpleNamespace(info=BackendInfo(name, device, 'fp32'), batch_size=batch)
    return types.SimpleNamespace(backend=backend)


@pytest.mark.parametrize('name, device, batch, enabled, text', [
    ('onnxruntime', 'cpu', 2, False, 'auto (off: CPU backend)'),
    ('torch', 'cpu', 4, False, 'auto (off: CPU backend)'),
    ('tensorrt', 'cuda:0', 2, True, 'auto (on: tensorrt on cuda:0, graph batch 2)'),
    ('torch', 'cuda:0', 4, True, 'auto (on: torch on cuda:0, graph batch 4)'),
    ('onnxruntime', 'cuda:0', 2, True, 'auto (on: onnxruntime on cuda:0, graph batch 2)'),
    ('tensorrt', 'cuda:1', 1, False, 'auto (off: tensorrt on cuda:1, graph batch 1)'),
])
def test_auto_batches_on_a_gpu_backend_with_a_batched_graph_only(name, device, batch, enabled,
                                                                 text):
    resolved = resolve_batch_cameras('auto', loaded(name, device, batch))
    assert resolved.enabled is enabled and resolved.text == text


@pytest.mark.parametrize('device', ['cpu', 'cuda:0'])
def test_explicit_true_and_false_win(device):
    assert resolve_batch_cameras('true', loaded('torch', device, 1)) == \
        BatchCameras('true', True)
    assert resolve_batch_cameras('false', loaded('tensorrt', device, 8)) == \
        BatchCameras('false', False)
    assert resolve_batch_cameras('true', loaded('torch', device)).text == 'true (on)'
    assert resolve_batch_cameras('false', loaded('torch', device)).text == 'false (off)'
    with pytest.raises(ValueError, match="'yes' is not one of auto, true, false"):
        resolve_batch_cameras('yes', loaded('torch', device))


def test_parameter_is_a_choice_that_takes_the_booleans_of_existing_files():
    spec = PARAMETERS_BY_NAME['batch_cameras']
    assert (spec.type_name, spec.default, spec.choices, spec.read_only) == \
        ('string', 'auto', ('auto', 'true', 'false'), False)
    assert NodeConfig.from_values({}).batch_cameras == 'auto'
    for value, expected in ((True, 'true'), (False, 'false'), ('auto', 'auto'),
                            ('true', 'true'), ('false', 'false')):
        assert NodeConfig.from_values({'batch_cameras': value}).batch_cameras == expected
    config = NodeConfig.from_values({})
    assert config.updated({'batch_cameras': False}).batch_cameras == 'false'
    assert config.updated({'batch_cameras': 'true'}).batch_cameras == 'true'
    assert config.updated({'batch_cameras': False}).as_dict()['batch_cameras'] == 'false'


@pytest.mark.parametrize('value', ['yes', 'True', 'on', 1, 0.0, ''])
def test_bad_value_names_the_parameter_and_the_choices(value):
    expected = (f'parameter batch_cameras {value!r} is not valid; choose one of auto, true, '
                'false')
    with pytest.raises(ConfigError) as raised:
        NodeConfig.from_values({'batch_cameras': value})
    assert str(raised.value) == expected
    with pytest.raises(ConfigError) as raised:
        NodeConfig.from_values({}).updated({'batch_cameras': value})
    assert str(raised.value) == expected


def test_other_choices_still_refuse_booleans_and_other_types():
    with pytest.raises(ConfigError, match='parameter backend True is not valid; choose one of '
                                          'auto, tensorrt, onnxruntime, torch'):
        NodeConfig.from_values({'backend': True})
    with pytest.raises(ConfigError, match='parameter image_topic must be a string, got 3'):
        NodeConfig.from_values({'image_topic': 3})


def test_diagnostics_node_entry_reports_the_setting_and_what_is_in_force():
    model = ModelInfo('enet_panoptic', 'onnxruntime', 'cpu', 'fp32', 'why', (512, 1024),
                      'panoptic')
    text = resolve_batch_cameras('auto', loaded('onnxruntime', 'cpu')).text
    entry = build_report('seg', model, ('a', 'b'), [], text)[0]
    assert dict(entry.values)['batch_cameras'] == 'auto (off: CPU backend)'


# --------------------------------------------------------------------------- real backends


def test_real_onnxruntime_cpu_backend_resolves_auto_to_off():
    from seg_perception.segmenter import Segmenter
    with Segmenter.from_package(ZOO_ENET, backend='onnxruntime', threads=1) as segmenter:
        assert segmenter.backend.info.device == 'cpu'
        assert resolve_batch_cameras('auto', segmenter) == \
            BatchCameras('auto', False, 'CPU backend')


def _tensorrt_segmenter(package):
    from seg_perception.manifest import ModelManifest
    from seg_perception.runtime.select import create_backend
    from seg_perception.segmenter import Segmenter
    backend, _ = create_backend(package, ModelManifest.load(package), backend='tensorrt')
    return Segmenter(backend, ModelManifest.load(package))


def test_tensorrt_backend_on_the_stand_in_gpu_resolves_auto_from_its_graph_batch(
        monkeypatch, tmp_path):
    import shutil

    import fake_tensorrt
    torch = pytest.importorskip('torch')
    from seg_test_models import export_lively_package
    fake_tensorrt.install(monkeypatch)
    single = _tensorrt_segmenter(shutil.copytree(ZOO_ENET, str(tmp_path / 'enet')))
    try:
        assert resolve_batch_cameras('auto', single).text == \
            'auto (off: tensorrt on cuda:0, graph batch 1)'
        assert resolve_batch_cameras('true', single).enabled
    finally:
        single.close()
    torch.set_num_threads(1)
    package = export_lively_package('enet', 'panoptic', 64, 128, str(tmp_path / 'b2'), batch=2)
    batched = _tensorrt_segmenter(package)
    try:
        assert resolve_batch_cameras('auto', batched).text == \
            'auto (on: tensorrt on cuda:0, graph batch 2)'
    finally:
        batched.close()


class _CountingSegmenter:
    """Wraps a Segmenter stand-in: records how many images each ``segment_batch`` got."""

    def __init__(self, device):
        self.backend = loaded('onnxruntime', device).backend
        self.manifest = types.SimpleNamespace(label_set=None, label_divisor=1000)
        self.calls = []

    def segment_batch(self, images, output_resolution, center_threshold):
        self.calls.append(len(images))
        raise RuntimeError('stop here')  # the worker reports it and goes on


@pytest.mark.parametrize('device, setting, calls', [
    ('cpu', 'auto', [1, 1, 1]), ('cpu', 'true', [3]), ('cuda:0', 'auto', [3]),
    ('cuda:0', 'false', [1, 1, 1]),
])
def test_worker_batches_only_where_batching_is_in_force(monkeypatch, device, setting, calls):
    import seg_perception.pipeline.worker as worker_module
    monkeypatch.setattr(worker_module, 'PanopticColorizer', lambda *args: None)
    segmenter = _CountingSegmenter(device)
    cameras = ['a', 'b', 'c']
    config = NodeConfig.from_values({'cameras': cameras, 'batch_cameras': setting})
    store = LatestFrameStore(cameras)
    errors = []
    worker = InferenceWorker(segmenter, store, lambda: config, lambda camera, output: True,
                             lambda frame, outputs: None,
                             lambda camera, reason: errors.append(camera))
    for camera in cameras:
        store.put(camera, Frame(camera, object(), None, 0.0))
    worker.process_pending()
    assert segmenter.calls == calls and sorted(errors) == cameras
