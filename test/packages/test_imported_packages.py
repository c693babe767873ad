"""End to end: one package per importer (``imported_packages``) through the Segmenter,
``check-onnx`` and ``eval`` on a synthetic bag. The node part is
``test/ros/test_imported_packages_node.py``.

The synthetic bag's ground truth is in Cityscapes train ids, so only the PyTorch-ENet
(Cityscapes) package is scored against its own classes (random weights: the numbers mean
nothing, the run must complete). With another label set ``eval`` reads the ids as the
package's classes, as it does for any bag:

- VOC package (21 classes): every Cityscapes id 0..18 is also a VOC id, so the frames are
  scored as if the bag were labelled in VOC -- the run completes, the metrics are
  meaningless, and eval cannot tell (a bag does not record its label set);
- CamVid package (11 classes): ids 11..18 are not CamVid classes, so every frame is skipped
  as ``bad label`` (listed in ``metrics.json``), the report is written, and the command
  prints one warning line naming the ids and one error line counting the skips, and exits 4
  (nothing evaluated); ``--no-labels`` runs the model on the same bag.
"""

import json

from imported_packages import build_imported_packages, SOURCES
import numpy as np
import pytest

from seg_perception.cli import main as cli_main
from seg_perception.export.tensorrt_check import check_tensorrt_compatibility
from seg_perception.labels import named_label_set
from seg_perception.manifest import ModelManifest
from seg_perception.segmenter import Segmenter

torch = pytest.importorskip('torch')
pytest.importorskip('onnxruntime')
pytestmark = pytest.mark.usefixtures('torch_one_thread')

BAG_FRAMES, BAG_WIDTH, BAG_HEIGHT = 2, 256, 128
MIN_AGREEMENT = 0.995


@pytest.fixture(scope='module')
def packages(tmp_path_factory, torch_one_thread):
    return build_imported_packages(str(tmp_path_factory.mktemp('imported')))


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    from seg_perception.bags.synthetic_bag import write_synthetic_bag
    path = str(tmp_path_factory.mktemp('drive') / 'drive')
    write_synthetic_bag(path, frames=BAG_FRAMES, width=BAG_WIDTH, height=BAG_HEIGHT, seed=3)
    return path


def camera_image(seed: int, height: int = 120, width: int = 200) -> np.ndarray:
    """A smooth random RGB uint8 image (8x8 blocks) of a size no package runs at."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1))


@pytest.mark.parametrize('source', SOURCES)
def test_segmenter_runs_the_package_like_its_source(packages, source):
    package = packages[source]
    manifest = ModelManifest.load(package.path)
    label_set = named_label_set(package.labels)
    assert manifest.label_set == label_set and manifest.task == 'semantic'
    with Segmenter.from_package(package.path, backend='onnxruntime', device='cpu',
                                threads=1) as segmenter:
        own = segmenter.segment(package.image)
        camera = segmenter.segment(camera_image(1))
    agreement = float(np.mean(own.semantic == package.expected))
    print(f'{source}: Segmenter = source framework on {agreement:.4%} of pixels')
    assert agreement >= MIN_AGREEMENT
    # Any camera size: outputs at the camera's size, classes of the package's label set.
    assert camera.semantic.shape == camera.confidence.shape == (120, 200)
    assert set(np.unique(camera.semantic)) <= set(range(label_set.num_classes))
    assert ((camera.confidence > 0) & (camera.confidence <= 1 + 1e-6)).all()
    assert len(np.unique(camera.semantic)) >= 2, 'a constant map would prove little'


@pytest.mark.parametrize('source', SOURCES)
def test_check_onnx_is_clean(packages, source, capsys):
    package = packages[source]
    path = ModelManifest.load(package.path).onnx_path(package.path)
    assert check_tensorrt_compatibility(path) == []
    assert cli_main(['check-onnx', package.path]) == 0
    assert 'OK for TensorRT' in capsys.readouterr().out


def _eval(bag, package, out_dir, *extra):
    return cli_main(['eval', bag, '--image-topic', '/cam0/image_raw', '--model', package.path,
                     '--backend', 'onnxruntime', '--threads', '1', '--out', str(out_dir),
                     '--no-progress', *extra])


def _report_classes(report_path):
    """Class names of the report's per-class table, in order."""
    with open(report_path, encoding='utf-8') as stream:
        section = stream.read().split('## Per class', 1)[1].split('\n#', 1)[0]
    rows = [line for line in section.splitlines() if line.startswith('|')]
    return [row.split('|')[1].strip() for row in rows[2:]]


def _output_bag_colours_follow(out_dir, label_set):
    """Every frame's semantic_color in eval's output bag is the label set's palette of its
    semantic map; returns the classes seen."""
    from seg_perception.bags.bag_io import BagReader
    from seg_perception.images.raw import decode_image
    topics = ['/cam0/segmentation/semantic', '/cam0/segmentation/semantic_color']
    by_stamp = {}
    with BagReader(str(out_dir / 'segmentation_bag')) as reader:
        for message in reader.messages(topics):
            msg = reader.deserialize(message)
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            by_stamp.setdefault(stamp, {})[message.topic] = np.array(decode_image(msg))
    assert len(by_stamp) == BAG_FRAMES
    seen = set()
    for maps in by_stamp.values():
        semantic, colour = maps[topics[0]], maps[topics[1]]
        np.testing.assert_array_equal(colour, label_set.palette[semantic])
        seen.update(np.unique(semantic).tolist())
    return seen


@pytest.mark.parametrize('source', ['torchvision', 'pytorch_enet'])
def test_eval_scores_the_bag_with_the_packages_label_set(packages, bag, source, tmp_path,
                                                         capsys):
    package = packages[source]
    label_set = named_label_set(package.labels)
    assert _eval(bag, package, tmp_path / 'eval') == 0
    printed = capsys.readouterr()
    assert 'mIoU' in printed.out and 'warning' not in printed.err
    metrics = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert metrics['frames']['evaluated'] == BAG_FRAMES and metrics['frames']['skipped'] == 0
    assert list(metrics['semantic']['iou']) == list(label_set.names)
    assert _report_classes(tmp_path / 'eval' / 'report.md') == list(label_set.names)
    seen = _output_bag_colours_follow(tmp_path / 'eval', label_set)
    if source == 'torchvision':  # VOC colours, not Cityscapes' (which differ for these ids)
        cityscapes = named_label_set('cityscapes').palette
        assert any((label_set.palette[k] != cityscapes[k]).any() for k in seen)


def test_eval_with_ground_truth_outside_the_label_set_skips_and_exits_4(packages, bag, tmp_path,
                                                                       capsys):
    package = packages['onnx']  # CamVid: the bag's Cityscapes ids 11..18 are not classes
    assert _eval(bag, package, tmp_path / 'eval') == 4  # nothing could be evaluated
    printed = capsys.readouterr()
    assert f'evaluated 0, skipped {BAG_FRAMES}' in printed.out
    warnings = [line for line in printed.err.splitlines() if line]
    assert len(warnings) == 2, printed.err
    assert warnings[0].startswith('seg-perception eval: warning: ')
    assert "label set 'camvid'" in warnings[0] and '--no-labels' in warnings[0]
    assert warnings[1] == (f'seg-perception eval: error: none of the {BAG_FRAMES} frames read '
                           f'could be evaluated (bad label {BAG_FRAMES}); metrics.json lists '
                           'each with its reason')
    metrics = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert metrics['frames']['skip_reasons'] == {'bad label': BAG_FRAMES}
    assert metrics['semantic'] is None
    assert _report_classes(tmp_path / 'eval' / 'report.md') == \
        list(named_label_set('camvid').names)

    assert _eval(bag, package, tmp_path / 'unlabelled', '--no-labels') == 0
    metrics = json.loads((tmp_path / 'unlabelled' / 'metrics.json').read_text())
    assert metrics['frames']['evaluated_without_labels'] == BAG_FRAMES
    _output_bag_colours_follow(tmp_path / 'unlabelled', named_label_set('camvid'))
