"""Backends and the Segmenter asked for fewer graph outputs (``outputs=``).

ONNX Runtime runs the graph pruned to them (from the checked bytes, nothing written), the
torch backend returns only them, ``create_backend`` rejects unknown names before trying any
backend, and the Segmenter's results hold None for what was not computed. Packages are
real ENet exports (random weights, livened up by ``seg_test_models``).
"""

import os

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception.manifest import ModelManifest
from seg_perception.packages import output_pruning
from seg_perception.runtime.base import GraphManifest
from seg_perception.runtime.onnxruntime_backend import OnnxRuntimeBackend
from seg_perception.runtime.select import create_backend
from seg_perception.segmenter import Segmenter, segmenter_outputs

pytest.importorskip('onnx')
torch = pytest.importorskip('torch')
cv2 = pytest.importorskip('cv2')

HEIGHT, WIDTH = 64, 128
WITHOUT_CONFIDENCE = ('semantic', 'instance', 'panoptic', 'instance_score')
pytestmark = pytest.mark.usefixtures('torch_one_thread')


@pytest.fixture(scope='module')
def packages(tmp_path_factory):
    """task -> exported ENet package directory (with weights.pt for the torch backend)."""
    return {task: export_lively_package('enet', task, HEIGHT, WIDTH,
                                        str(tmp_path_factory.mktemp(f'enet_{task}')))
            for task in ('semantic', 'panoptic')}


def _images(seed: int = 0) -> np.ndarray:
    """float32 (1, 3, H, W) smooth 0..255 image."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (8, 16, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.clip(smooth, 0, 255).transpose(2, 0, 1)[None])


def _rgb(seed: int = 0) -> np.ndarray:
    return np.ascontiguousarray(_images(seed)[0].transpose(1, 2, 0).astype(np.uint8))


@pytest.mark.parametrize('outputs', [WITHOUT_CONFIDENCE, ('semantic',)])
def test_onnxruntime_runs_the_pruned_graph_in_memory(packages, outputs):
    package = packages['panoptic']
    manifest = ModelManifest.load(package)
    before = sorted(os.listdir(package))
    with OnnxRuntimeBackend(manifest, package, threads=1) as full, \
            OnnxRuntimeBackend(manifest, package, threads=1, outputs=outputs) as pruned:
        expected = full.run(_images(), 0.2)
        got = pruned.run(_images(), 0.2)
        assert tuple(got) == pruned.output_names == outputs
        assert isinstance(pruned.manifest, GraphManifest) and pruned.manifest.is_panoptic
        for name in outputs:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        assert 'graph pruned without confidence' in pruned.info.detail
        assert 'pruned' not in full.info.detail and full.manifest is manifest
        # a semantic-only graph has no centre threshold input: none is fed
        assert pruned.manifest.input_names == (('image',) if outputs == ('semantic',)
                                               else ('image', 'center_threshold'))
    assert sorted(os.listdir(package)) == before


def test_onnxruntime_without_onnx_runs_everything_returns_the_subset(packages, monkeypatch):
    monkeypatch.setattr(output_pruning, 'onnx_available', lambda: False)
    package = packages['panoptic']
    backend = OnnxRuntimeBackend(ModelManifest.load(package), package, threads=1,
                                 outputs=WITHOUT_CONFIDENCE)
    assert tuple(backend.run(_images(), 0.2)) == WITHOUT_CONFIDENCE
    assert 'onnx package, which prunes it, is not installed' in backend.info.detail
    assert backend.manifest.input_names == ('image', 'center_threshold')


def test_onnxruntime_checks_the_checksum_of_the_bytes_it_prunes(packages, tmp_path):
    import shutil
    package = shutil.copytree(packages['panoptic'], str(tmp_path / 'pkg'))
    with open(os.path.join(package, 'model.onnx'), 'r+b') as stream:
        stream.seek(200)
        stream.write(b'\x00\x01\x02')
    from seg_perception.runtime.base import BackendError
    with pytest.raises(BackendError, match='sha256 does not match'):
        OnnxRuntimeBackend(ModelManifest.load(package), package, outputs=WITHOUT_CONFIDENCE)


def test_torch_returns_only_what_was_asked(packages):
    package = packages['panoptic']
    manifest = ModelManifest.load(package)
    from seg_perception.runtime.torch_backend import TorchBackend
    full = TorchBackend(manifest, package)
    pruned = TorchBackend(manifest, package, outputs=WITHOUT_CONFIDENCE)
    expected, got = full.run(_images(), 0.2), pruned.run(_images(), 0.2)
    assert tuple(got) == pruned.output_names == WITHOUT_CONFIDENCE
    for name in WITHOUT_CONFIDENCE:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_create_backend_checks_output_names_first(packages):
    manifest = ModelManifest.load(packages['panoptic'])
    with pytest.raises(ValueError, match="'confidnce'; valid: semantic, confidence, instance, "
                                         'panoptic, instance_score'):
        create_backend(packages['panoptic'], manifest, backend='tensorrt',
                       outputs=('semantic', 'confidnce'))
    with pytest.raises(ValueError, match="lack 'semantic'"):
        create_backend(packages['panoptic'], manifest, outputs=('panoptic',))
    backend, _ = create_backend(packages['panoptic'], manifest, backend='onnxruntime',
                                threads=1, outputs=('instance', 'semantic', 'panoptic'))
    assert backend.output_names == ('semantic', 'instance', 'panoptic')
    backend.close()


@pytest.mark.parametrize('backend', ['onnxruntime', 'torch'])
def test_segmenter_without_confidence(packages, backend):
    package = packages['panoptic']
    options = {'threads': 1} if backend == 'onnxruntime' else {}
    with Segmenter.from_package(package, backend=backend, **options) as full, \
            Segmenter.from_package(package, backend=backend, outputs=WITHOUT_CONFIDENCE,
                                   **options) as pruned:
        assert pruned.graph_outputs == WITHOUT_CONFIDENCE
        image = _rgb()
        expected, result = full.segment(image), pruned.segment(image)
        assert result.confidence is None and expected.confidence is not None
        for name in ('semantic', 'instance', 'panoptic', 'instance_score'):
            np.testing.assert_array_equal(getattr(result, name), getattr(expected, name))
        assert result.instance.max() > 0
        # instances keep their centre scores; stuff segments score 0 without confidence
        scores = {s.id: s.score for s in expected.segments}
        for segment in result.segments:
            assert segment.score == (scores[segment.id] if segment.id % 1000 else 0.0)


def test_segmenter_outputs_of_a_semantic_graph(packages):
    manifest = ModelManifest.load(packages['semantic'])
    assert segmenter_outputs(manifest, WITHOUT_CONFIDENCE) == ('semantic', 'confidence')
    assert segmenter_outputs(manifest, ('semantic', 'instance', 'panoptic')) == ('semantic',)
    with Segmenter.from_package(packages['semantic'], backend='onnxruntime', threads=1,
                                outputs=('semantic', 'instance', 'panoptic')) as segmenter:
        result = segmenter.segment(_rgb())
        assert segmenter.graph_outputs == ('semantic',)
        assert result.confidence is None and result.instance_score is None
        assert result.panoptic.shape == (HEIGHT, WIDTH)


def test_segmenter_refuses_too_few_outputs(packages):
    with pytest.raises(ValueError, match='lack instance, panoptic, which the Segmenter of a '
                                         'panoptic model needs'):
        Segmenter.from_package(packages['panoptic'], backend='onnxruntime',
                               outputs=('semantic', 'confidence'))
    manifest = ModelManifest.load(packages['panoptic'])
    backend = OnnxRuntimeBackend(manifest, packages['panoptic'], threads=1,
                                 outputs=('semantic',))
    with pytest.raises(ValueError, match='needs graph output.s. instance, panoptic'):
        Segmenter(backend, manifest)
    backend.close()
