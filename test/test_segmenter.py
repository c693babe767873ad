"""Segmenter, benchmark and demo on real exported packages (ONNX Runtime CPU)."""

import json

import cv2
import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception import SegmentationResult, Segmenter
from seg_perception.cli import main as cli_main
from seg_perception.images.preprocess import resize_interpolation, resize_nearest
from seg_perception.manifest import ManifestError
from seg_perception.runtime.onnxruntime_backend import OnnxRuntimeBackend
from seg_perception.tools.benchmark import format_report, run_benchmark

torch = pytest.importorskip('torch')

HEIGHT, WIDTH = 64, 128


pytestmark = pytest.mark.usefixtures('torch_one_thread')


@pytest.fixture(scope='module')
def panoptic_package(tmp_path_factory):
    return export_lively_package('enet', 'panoptic', HEIGHT, WIDTH,
                                 str(tmp_path_factory.mktemp('enet_panoptic')))


@pytest.fixture(scope='module')
def semantic_package(tmp_path_factory):
    """Batch 2, so segment_batch packs and pads."""
    return export_lively_package('enet', 'semantic', HEIGHT, WIDTH,
                                 str(tmp_path_factory.mktemp('enet_semantic_b2')), batch=2)


@pytest.fixture(scope='module')
def panoptic(panoptic_package):
    with Segmenter.from_package(panoptic_package, backend='onnxruntime', device='cpu',
                                threads=1) as segmenter:
        yield segmenter


@pytest.fixture(scope='module')
def semantic(semantic_package):
    with Segmenter.from_package(semantic_package, backend='onnxruntime', device='cpu',
                                threads=1) as segmenter:
        yield segmenter


def street(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB uint8 (height, width, 3) image."""
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 9, 3), np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def _check_maps(result: SegmentationResult, size) -> None:
    assert result.output_size == tuple(size)
    for name, dtype in (('semantic', np.uint8), ('confidence', np.float32),
                        ('instance', np.int32), ('panoptic', np.int32)):
        array = getattr(result, name)
        assert array.shape == tuple(size), name
        assert array.dtype == dtype, name


@pytest.mark.parametrize('name', ['panoptic', 'semantic'])
def test_odd_input_size_gives_maps_of_input_size(request, name):
    segmenter = request.getfixturevalue(name)
    result = segmenter.segment(street(333, 517))
    assert result.input_size == (333, 517)
    _check_maps(result, (333, 517))
    assert 0.0 < result.confidence.min() and result.confidence.max() <= 1.0
    timing = result.timing
    assert timing.preprocess_ms > 0 and timing.inference_ms > 0 and timing.postprocess_ms > 0
    assert timing.total_ms == pytest.approx(
        timing.preprocess_ms + timing.inference_ms + timing.postprocess_ms)


def test_network_resolution_is_the_graph_output(panoptic):
    image = street(333, 517)
    small = panoptic.segment(image, output_resolution='network')
    _check_maps(small, (HEIGHT, WIDTH))
    full = panoptic.segment(image)
    for name in ('semantic', 'confidence', 'instance', 'panoptic'):
        np.testing.assert_array_equal(getattr(full, name),
                                      resize_nearest(getattr(small, name), (333, 517)))
    # Same pixels as the backend itself, so nothing is lost between graph and result.
    interpolation = resize_interpolation(image.shape[:2], (HEIGHT, WIDTH))
    buffer = np.ascontiguousarray(
        cv2.resize(image, (WIDTH, HEIGHT), interpolation=interpolation)
        .transpose(2, 0, 1)[None].astype(np.float32))
    raw = panoptic.backend.run(buffer, panoptic.manifest.postprocess.center_threshold)
    np.testing.assert_array_equal(small.panoptic, raw['panoptic'][0])
    np.testing.assert_array_equal(small.semantic, raw['semantic'][0])


def test_shrinking_a_lot_uses_area_interpolation(panoptic):
    image = street(HEIGHT * 4, WIDTH * 4)
    result = panoptic.segment(image, output_resolution='network')
    area = cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    reference = panoptic.segment(area, output_resolution='network')
    np.testing.assert_array_equal(result.panoptic, reference.panoptic)


@pytest.mark.parametrize('name', ['panoptic', 'semantic'])
def test_batch_equals_individual_results(request, name):
    segmenter = request.getfixturevalue(name)
    images = [street(333, 517, 1), street(HEIGHT, WIDTH, 2), street(90, 200, 3)]
    batched = segmenter.segment_batch(images)
    assert len(batched) == 3
    for image, together in zip(images, batched):
        alone = segmenter.segment(image)
        assert together.output_size == image.shape[:2]
        for field in ('semantic', 'confidence', 'instance', 'panoptic'):
            np.testing.assert_array_equal(getattr(together, field), getattr(alone, field))
        assert together.segments == alone.segments


def test_results_do_not_share_buffers(panoptic):
    first = panoptic.segment(street(HEIGHT, WIDTH, 4), output_resolution='network')
    kept = first.panoptic.copy()
    panoptic.segment(street(HEIGHT, WIDTH, 5), output_resolution='network')
    np.testing.assert_array_equal(first.panoptic, kept)


def _check_segments(result: SegmentationResult) -> None:
    segments = result.segments
    ids = set(np.unique(result.panoptic).tolist()) - {result.void_id * result.label_divisor}
    assert {s.id for s in segments} == ids
    for segment in segments:
        mask = result.panoptic == segment.id
        assert segment.area == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert segment.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                ys.max() - ys.min() + 1)
        assert segment.category_id == segment.id // result.label_divisor
        assert segment.is_thing == (segment.category_id in result.thing_ids)
        assert np.all(result.semantic[mask] == segment.category_id)
        assert np.all(result.instance[mask] == segment.id % result.label_divisor)
        assert 0.0 <= segment.score <= 1.0 or segment.is_thing


@pytest.mark.parametrize('name', ['panoptic', 'semantic'])
def test_segments_are_consistent_with_the_maps(request, name):
    segmenter = request.getfixturevalue(name)
    result = segmenter.segment(street(333, 517, 6))
    assert result._segments is None, 'segments must be computed only when asked for'
    things = result.instance > 0
    assert things.any(), 'no instance found: the test would not exercise instances'
    assert np.all(np.isin(result.semantic[things], result.thing_ids))
    _check_segments(result)
    assert any(s.is_thing for s in result.segments)


def test_semantic_model_instances_are_connected_components(semantic):
    result = semantic.segment(street(HEIGHT, WIDTH, 7), output_resolution='network')
    for instance_id in np.unique(result.instance[result.instance > 0]):
        mask = (result.instance == instance_id).astype(np.uint8)
        assert len(np.unique(result.semantic[mask > 0])) == 1
        assert cv2.connectedComponents(mask, connectivity=8)[0] == 2  # background + one
    np.testing.assert_array_equal(
        result.panoptic, result.semantic.astype(np.int32) * 1000 + result.instance)


def test_center_threshold_is_applied(panoptic):
    image = street(HEIGHT, WIDTH, 8)
    low = panoptic.segment(image, center_threshold=0.1)
    high = panoptic.segment(image, center_threshold=1.0)
    assert low.instance.max() > 0
    assert len(np.unique(high.instance)) < len(np.unique(low.instance))
    default = panoptic.segment(image)
    np.testing.assert_array_equal(default.panoptic, low.panoptic)  # manifest default 0.1


@pytest.mark.parametrize('image, message', [
    (np.zeros((40, 60, 3), np.float32), 'dtype uint8'),
    (np.zeros((40, 60), np.uint8), '3 dimensions'),
    (np.zeros((1, 40, 60, 3), np.uint8), '3 dimensions'),
    (np.zeros((40, 60, 4), np.uint8), '3 channels'),
    (np.zeros((40, 60, 1), np.uint8), '3 channels'),
    (np.zeros((0, 60, 3), np.uint8), 'empty'),
    ([[[0, 0, 0]]], 'numpy array'),
])
def test_bad_images_are_value_errors(panoptic, image, message):
    with pytest.raises(ValueError, match=message):
        panoptic.segment(image)


def test_bad_arguments_are_value_errors(panoptic):
    image = street(HEIGHT, WIDTH)
    with pytest.raises(ValueError, match="output_resolution 'full' is not one of input, network"):
        panoptic.segment(image, output_resolution='full')
    with pytest.raises(ValueError, match=r'center_threshold must be in \[0, 1\]'):
        panoptic.segment(image, center_threshold=1.5)
    with pytest.raises(ValueError, match='at least one image'):
        panoptic.segment_batch([])
    with pytest.raises(ValueError, match='not one array'):
        panoptic.segment_batch(np.zeros((2, 40, 60, 3), np.uint8))
    with pytest.raises(ValueError, match='image 1 must have dtype uint8'):
        panoptic.segment_batch([image, image.astype(np.float32)])


def test_corrupt_package_is_refused(panoptic_package, tmp_path):
    import shutil
    target = tmp_path / 'corrupt'
    shutil.copytree(panoptic_package, target)
    with open(target / 'model.onnx', 'r+b') as stream:
        stream.seek(100)
        stream.write(b'\x00\x01\x02')
    with pytest.raises(ManifestError, match='corrupt'):
        Segmenter.from_package(str(target), backend='onnxruntime', device='cpu')
    with pytest.raises(ManifestError, match='does not exist'):
        Segmenter.from_package(str(tmp_path / 'nowhere'))


def test_from_zoo_says_what_is_available():
    try:
        import seg_perception.packages.zoo  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match='ships no model zoo'):
            Segmenter.from_zoo('enet_cityscapes')
    else:
        with pytest.raises((ValueError, KeyError)):
            Segmenter.from_zoo('no_such_model_anywhere')


def test_auto_backend_reason_is_kept(panoptic_package):
    with Segmenter.from_package(panoptic_package, device='cpu', threads=1) as segmenter:
        assert isinstance(segmenter.backend, OnnxRuntimeBackend)
        assert segmenter.backend_reason.startswith('onnxruntime CPU (fp32)')


def test_run_benchmark(panoptic):
    report = run_benchmark(panoptic, image_size=(120, 200), iterations=3, warmup=1)
    assert report.image_size == (120, 200)
    assert report.network_size == (HEIGHT, WIDTH)
    assert report.total.median_ms >= report.inference.median_ms > 0
    assert report.total.p90_ms >= report.total.median_ms
    assert 0.0 < report.outside_backend_share < 1.0
    assert report.fps == pytest.approx(1000.0 / report.total.median_ms)
    assert 'FPS' in format_report(report)
    json.dumps(report.to_dict())
    with pytest.raises(ValueError, match='iterations must be at least 1'):
        run_benchmark(panoptic, iterations=0)


def test_bench_command(panoptic_package, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    assert cli_main(['bench', '--package', panoptic_package, '--backend', 'onnxruntime',
                     '--iterations', '2', '--warmup', '0', '--threads', '1',
                     '--json', str(out)]) == 0
    data = json.loads(out.read_text())
    assert data['task'] == 'panoptic' and data['backend'] == 'onnxruntime'
    assert set(data['inference']) == {'median_ms', 'p90_ms', 'mean_ms'}
    assert 'outside the backend call' in capsys.readouterr().out
    assert cli_main(['bench', '--model', 'enet', '--iterations', '1', '--warmup', '0']) == 2
    assert 'needs --height and --width' in capsys.readouterr().err


def test_bench_command_exports_an_architecture(capsys):
    assert cli_main(['bench', '--model', 'enet', '--height', '32', '--width', '64',
                     '--backend', 'onnxruntime', '--iterations', '2', '--warmup', '0',
                     '--threads', '1']) == 0
    assert 'enet_semantic (semantic) 64x32 on onnxruntime cpu' in capsys.readouterr().out


def test_strided_views_are_accepted(panoptic):
    rgba = np.dstack([street(90, 200, 9), np.full((90, 200), 255, np.uint8)])
    view = rgba[:, ::-1, 2::-1]  # mirrored BGR view of an RGBA buffer, no copy
    np.testing.assert_array_equal(panoptic.segment(view).panoptic,
                                  panoptic.segment(np.ascontiguousarray(view)).panoptic)
