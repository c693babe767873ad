"""ONNX Runtime and PyTorch backends, and the automatic backend choice.

Packages are real exports of registered architectures (random weights, livened up by
``seg_test_models``: parity and the backend contract do not depend on training).
"""

import dataclasses
import os
import shutil

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception.manifest import ModelManifest
from seg_perception.runtime.base import BackendError, BackendUnavailable
from seg_perception.runtime.onnxruntime_backend import available_providers, OnnxRuntimeBackend
from seg_perception.runtime.select import candidates_for, create_backend
from seg_perception.runtime.torch_backend import TorchBackend

torch = pytest.importorskip('torch')

SMALL_HEIGHT, SMALL_WIDTH = 64, 128


pytestmark = pytest.mark.usefixtures('torch_one_thread')


@pytest.fixture(scope='module')
def packages(tmp_path_factory):
    """(architecture, task) -> exported package directory."""
    made = {}
    for architecture, task in (('enet', 'semantic'), ('enet', 'panoptic'),
                               ('deeplabv3plus_mobilenetv3', 'panoptic')):
        out = str(tmp_path_factory.mktemp(f'{architecture}_{task}'))
        made[(architecture, task)] = export_lively_package(architecture, task, SMALL_HEIGHT,
                                                           SMALL_WIDTH, out)
    return made


def _images(manifest: ModelManifest, seed: int = 0) -> np.ndarray:
    """Smooth random images (a random-weight network on white noise has tiny margins)."""
    import cv2
    rng = np.random.default_rng(seed)
    images = np.empty((manifest.batch, 3, manifest.input_height, manifest.input_width),
                      np.float32)
    for index in range(manifest.batch):
        coarse = rng.uniform(0, 255, (8, 16, 3)).astype(np.float32)
        smooth = cv2.resize(coarse, (manifest.input_width, manifest.input_height),
                            interpolation=cv2.INTER_CUBIC)
        images[index] = np.clip(smooth, 0, 255).transpose(2, 0, 1)
    return images


def _matched_fraction(reference: np.ndarray, other: np.ndarray) -> float:
    """Fraction of pixels on which ``other`` agrees with ``reference`` up to a renaming of
    ids (instance ids of centres with equal scores may come out in a different order)."""
    pairs, counts = np.unique(np.stack([reference.ravel(), other.ravel()]), axis=1,
                              return_counts=True)
    best = {}
    for (ref_id, other_id), count in zip(pairs.T, counts):
        best[ref_id] = max(best.get(ref_id, 0), count)
    return sum(best.values()) / reference.size


@pytest.mark.parametrize('key', [('enet', 'semantic'), ('enet', 'panoptic'),
                                 ('deeplabv3plus_mobilenetv3', 'panoptic')],
                         ids=lambda k: '-'.join(k) if isinstance(k, tuple) else k)
def test_onnxruntime_matches_torch(packages, key):
    package = packages[key]
    manifest = ModelManifest.load(package)
    onnx_backend = OnnxRuntimeBackend(manifest, package, threads=1)
    torch_backend = TorchBackend(manifest, package)
    images = _images(manifest)
    threshold = manifest.postprocess.center_threshold
    ours, reference = onnx_backend.run(images, threshold), torch_backend.run(images, threshold)
    assert set(ours) == set(reference) == set(manifest.output_names)
    for name in manifest.output_names:
        assert ours[name].dtype == reference[name].dtype, name
        assert ours[name].shape == reference[name].shape, name
    same_class = ours['semantic'] == reference['semantic']
    assert same_class.mean() >= 0.999
    np.testing.assert_allclose(ours['confidence'][same_class],
                               reference['confidence'][same_class], atol=1e-4)
    if manifest.is_panoptic:
        assert reference['instance'].max() > 0, 'random model found no instance: weak test'
        assert _matched_fraction(reference['panoptic'], ours['panoptic']) >= 0.999
        assert _matched_fraction(reference['instance'], ours['instance']) >= 0.999


def test_outputs_are_owned_by_the_caller(packages):
    package = packages[('enet', 'semantic')]
    manifest = ModelManifest.load(package)
    backend = OnnxRuntimeBackend(manifest, package, threads=1)
    first = backend.run(_images(manifest, seed=1), 0.1)
    kept = first['semantic'].copy()
    backend.run(_images(manifest, seed=2), 0.1)
    np.testing.assert_array_equal(first['semantic'], kept)


def test_onnxruntime_reports_what_it_runs_on(packages):
    package = packages[('enet', 'semantic')]
    backend = OnnxRuntimeBackend(ModelManifest.load(package), package, threads=1)
    assert backend.info.name == 'onnxruntime'
    assert backend.info.device == 'cpu'
    assert 'CPUExecutionProvider' in backend.info.detail


def test_run_rejects_wrong_input(packages):
    package = packages[('enet', 'semantic')]
    manifest = ModelManifest.load(package)
    backend = OnnxRuntimeBackend(manifest, package, threads=1)
    with pytest.raises(ValueError, match='float32'):
        backend.run(_images(manifest).astype(np.float64), 0.1)
    with pytest.raises(ValueError, match=r'\(1, 3, 64, 128\)'):
        backend.run(np.zeros((1, 3, 32, 128), np.float32), 0.1)


def _no_gpu_here() -> bool:
    return not torch.cuda.is_available() and 'CUDAExecutionProvider' not in available_providers()


@pytest.mark.skipif(not _no_gpu_here(), reason='this machine has a GPU; expectation differs')
def test_auto_picks_onnxruntime_cpu_and_says_why(packages):
    package = packages[('enet', 'semantic')]
    backend, reason = create_backend(package, ModelManifest.load(package))
    assert isinstance(backend, OnnxRuntimeBackend)
    assert backend.info.device == 'cpu'
    assert reason.startswith('tensorrt: ')
    assert 'onnxruntime CUDA provider: not available (providers: ' in reason
    assert 'torch CUDA: no GPU' in reason
    assert reason.endswith('\u2192 onnxruntime CPU (fp32)')


@pytest.mark.skipif(not _no_gpu_here(), reason='this machine has a GPU; expectation differs')
def test_cuda_request_without_gpu_lists_every_reason(packages):
    package = packages[('enet', 'semantic')]
    with pytest.raises(BackendUnavailable) as error:
        create_backend(package, ModelManifest.load(package), device='cuda')
    message = str(error.value)
    assert 'device cuda' in message
    for fragment in ('tensorrt:', 'onnxruntime CUDA provider:', 'torch CUDA: no GPU'):
        assert fragment in message


@pytest.mark.skipif(not _no_gpu_here(), reason='this machine has a GPU; expectation differs')
def test_onnxruntime_cuda_request_is_refused_not_downgraded(packages):
    package = packages[('enet', 'semantic')]
    manifest = ModelManifest.load(package)
    with pytest.raises(BackendUnavailable, match='CUDAExecutionProvider is not available '
                                                 r'\(available: .*CPUExecutionProvider'):
        OnnxRuntimeBackend(manifest, package, device='cuda')
    with pytest.raises(BackendUnavailable, match='TensorrtExecutionProvider'):
        OnnxRuntimeBackend(manifest, package,
                           providers=['TensorrtExecutionProvider', 'CPUExecutionProvider'])


def test_explicit_backend_and_device(packages):
    package = packages[('enet', 'semantic')]
    manifest = ModelManifest.load(package)
    backend, reason = create_backend(package, manifest, backend='torch', device='cpu')
    assert isinstance(backend, TorchBackend)
    assert backend.info.precision == 'fp32'
    assert reason.startswith('torch CPU (fp32)')
    backend, _ = create_backend(package, manifest, backend='onnxruntime', device='cpu',
                                threads=1)
    assert isinstance(backend, OnnxRuntimeBackend)
    assert 'intra-op threads: 1' in backend.info.detail


@pytest.mark.parametrize('parameter, choices', [
    ('backend', 'auto, tensorrt, onnxruntime, torch'),
    ('device', 'auto, cpu, cuda'),
    ('precision', 'auto, fp32, fp16, int8'),
])
def test_unknown_names_list_the_choices(packages, parameter, choices):
    package = packages[('enet', 'semantic')]
    with pytest.raises(ValueError, match=f"{parameter} 'gpu0' is not one of {choices}"):
        create_backend(package, ModelManifest.load(package), **{parameter: 'gpu0'})


def test_impossible_requests_are_value_errors(packages):
    package = packages[('enet', 'semantic')]
    manifest = ModelManifest.load(package)
    with pytest.raises(ValueError, match='tensorrt runs on device cuda only'):
        create_backend(package, manifest, backend='tensorrt', device='cpu')
    with pytest.raises(ValueError, match='option.*turbo'):
        create_backend(package, manifest, turbo=True)
    assert [c.backend for c in candidates_for('auto', 'cpu')] == ['onnxruntime', 'torch']


def test_precision_the_backend_cannot_run(packages):
    package = packages[('enet', 'semantic')]
    manifest = ModelManifest.load(package)
    with pytest.raises(BackendUnavailable, match='fp16 only on device cuda'):
        TorchBackend(manifest, package, device='cpu', precision='fp16')
    with pytest.raises(BackendUnavailable, match='fp16 needs'):
        OnnxRuntimeBackend(manifest, package, precision='fp16')
    with pytest.raises(BackendUnavailable, match='onnxruntime.*fp16 needs'):
        create_backend(package, manifest, device='cpu', precision='fp16')


def _copy_package(source: str, target: str, **changes) -> ModelManifest:
    shutil.copytree(source, target)
    manifest = dataclasses.replace(ModelManifest.load(target), **changes)
    manifest.save(target)
    return manifest


def test_corrupt_onnx_file(packages, tmp_path):
    source = packages[('enet', 'semantic')]
    # Garbage with no checksum to catch it: onnxruntime's parser must refuse it.
    target = str(tmp_path / 'garbage')
    manifest = _copy_package(source, target, onnx_sha256=None)
    with open(manifest.onnx_path(target), 'wb') as stream:
        stream.write(b'\x08\x07not a protobuf' * 100)
    with pytest.raises(BackendError, match='model.onnx is corrupt or not a valid ONNX'):
        OnnxRuntimeBackend(manifest, target)
    # One flipped byte in the weights parses fine; the manifest checksum catches it.
    target = str(tmp_path / 'flipped')
    manifest = _copy_package(source, target)
    path = manifest.onnx_path(target)
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    with open(path, 'wb') as stream:
        stream.write(bytes(data))
    with pytest.raises(BackendError, match='model.onnx is corrupt: its sha256 does not match'):
        OnnxRuntimeBackend(manifest, target)


def test_missing_onnx_file(packages, tmp_path):
    target = str(tmp_path / 'missing')
    manifest = _copy_package(packages[('enet', 'semantic')], target)
    os.remove(manifest.onnx_path(target))
    with pytest.raises(BackendError, match='model.onnx does not exist'):
        OnnxRuntimeBackend(manifest, target)


def test_graph_that_does_not_match_its_manifest(packages):
    package = packages[('enet', 'semantic')]
    wrong_task = dataclasses.replace(ModelManifest.load(package), task='panoptic')
    with pytest.raises(BackendError, match='inputs .* expects'):
        OnnxRuntimeBackend(wrong_task, package)
    wrong_size = dataclasses.replace(ModelManifest.load(package), input_height=32)
    with pytest.raises(BackendError, match='input image has shape'):
        OnnxRuntimeBackend(wrong_size, package)


@pytest.mark.parametrize('key', [('enet', 'panoptic'), ('deeplabv3plus_mobilenetv3', 'panoptic')],
                         ids=lambda k: '-'.join(k))
def test_torch_backend_without_weights_file_runs_the_onnx_weights(packages, key, tmp_path):
    """An ONNX-only package (the zoo's DeepLab): BatchNorm folding and PReLU rewriting undone."""
    package = str(tmp_path / 'onnx_only')
    shutil.copytree(packages[key], package)
    os.remove(os.path.join(package, 'weights.pt'))
    manifest = dataclasses.replace(ModelManifest.load(package), weights_file=None)
    images = _images(manifest)
    threshold = manifest.postprocess.center_threshold
    reference = OnnxRuntimeBackend(manifest, package, threads=1).run(images, threshold)
    ours = TorchBackend(manifest, package).run(images, threshold)
    assert (ours['semantic'] == reference['semantic']).mean() >= 0.999
    assert reference['instance'].max() > 0
    assert _matched_fraction(reference['panoptic'], ours['panoptic']) >= 0.999
    with open(os.path.join(package, 'model.onnx'), 'wb') as stream:
        stream.write(b'not onnx')
    with pytest.raises(BackendError, match='no torch weights file and .*not a readable ONNX'):
        TorchBackend(manifest, package)
