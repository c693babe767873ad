"""Post-processing search: hand-built heads with a known best setting, and the CLI end to end."""

import dataclasses
import json
import os

import numpy as np
import pytest

from seg_perception.manifest import ModelManifest, PostprocessSettings
from seg_perception.postprocess.reference import panoptic_from_semantic
from seg_perception.training.tuning import (
    HeadSample,
    score_settings,
    tune_postprocess,
    TuningError,
)

ROAD, POLE, CAR = 0, 5, 13
H, W = 64, 128


def panoptic_manifest(**postprocess):
    return ModelManifest(name='hand_built', architecture='enet', task='panoptic',
                         input_height=H, input_width=W,
                         postprocess=PostprocessSettings(**postprocess))


def split_car_sample() -> HeadSample:
    """One car on a road. The heads are those of a weak model: a true centre of score 0.9
    and a spurious one of 0.3 that the offsets of the car's right third point at, and a
    48-pixel blob of pole predicted on the road."""
    gt_semantic = np.full((H, W), ROAD, np.uint8)
    gt_semantic[16:48, 32:96] = CAR
    instance = np.zeros((H, W), np.int32)
    instance[16:48, 32:96] = 1
    predicted = gt_semantic.copy()
    predicted[4:10, 4:12] = POLE
    center = np.zeros((H // 4, W // 4), np.float32)
    center[8, 16] = 0.9     # network pixel (32, 64): the car's middle
    center[8, 21] = 0.3     # network pixel (32, 84)
    rows, cols = np.mgrid[0:H // 4, 0:W // 4] * 4 + 2
    target_col = np.where(cols >= 75, 84, 64)
    offset = np.stack([32.0 - rows, target_col - cols]).astype(np.float32)
    return HeadSample(semantic=predicted, center=center, offset=offset,
                      gt_semantic=gt_semantic,
                      gt_panoptic=gt_semantic.astype(np.int32) * 1000 + instance)


def test_search_drops_the_spurious_centre_and_the_small_stuff_blob():
    manifest = panoptic_manifest(center_threshold=0.1, stuff_area=0)
    sample = split_car_sample()
    result = tune_postprocess([sample], manifest, rounds=2)
    assert result.baseline.settings == manifest.postprocess
    best = result.best.settings
    assert best.center_threshold >= 0.3       # strictly above the spurious centre's score
    assert 48 <= best.stuff_area              # the pole blob becomes void
    # The car is matched whole; the road lost the blob's 48 pixels (void, not pole).
    road_iou = (H * W - 32 * 64 - 48) / (H * W - 32 * 64)
    assert result.best.score.pq == pytest.approx((1.0 + road_iou) / 2)
    assert result.baseline.score.pq < 0.7
    assert set(result.changed()) >= {'center_threshold', 'stuff_area'}
    # The score of the chosen settings is what the reference post-processing gives.
    instance, panoptic, _ = panoptic_from_semantic(
        sample.semantic, sample.center, sample.offset, manifest.label_set.thing_ids,
        manifest.label_set.num_classes, best)
    assert np.unique(instance[sample.gt_semantic == CAR]).tolist() == [1]
    assert (panoptic[4:10, 4:12] == 255 * 1000).all()


def test_search_turns_on_centre_votes_for_a_strong_peak_nothing_points_at():
    # The spurious centre scores above the true one, so no threshold removes it alone; the
    # right third's offsets land 3 cells (12 px) short of it: nearer it than the true centre
    # but outside the 8-pixel vote radius, so it gets no votes.
    sample = split_car_sample()
    center = sample.center.copy()
    center[8, 21] = 0.95
    offset = sample.offset.copy()
    rows, cols = np.mgrid[0:H // 4, 0:W // 4] * 4 + 2
    offset[1] = np.where(cols >= 75, 96, 64) - cols
    sample = dataclasses.replace(sample, center=center, offset=offset)
    manifest = panoptic_manifest(center_threshold=0.1, stuff_area=256)
    result = tune_postprocess([sample], manifest, rounds=2)
    assert result.baseline.score.pq_things < 0.5  # the car split in two: one match, one FP
    assert result.best.settings.min_center_votes > 0
    assert result.best.score.pq_things == pytest.approx(1.0)


def test_search_keeps_the_start_when_nothing_beats_it():
    manifest = panoptic_manifest(center_threshold=0.5, stuff_area=256)
    result = tune_postprocess([split_car_sample()], manifest,
                              search_space={'center_threshold': (0.2, 0.5)})
    assert result.best.settings == manifest.postprocess and result.changed() == {}
    assert [t.settings.center_threshold for t in result.trials] == [0.5, 0.2]


def test_miou_is_that_of_the_argmax_map_whatever_the_settings():
    # The pole blob stays pole in the semantic map even when stuff_area voids it in the
    # panoptic map, and the split car's pixels keep their class: mIoU never moves.
    manifest = panoptic_manifest(center_threshold=0.1, stuff_area=0)
    result = tune_postprocess([split_car_sample()], manifest, rounds=2)
    assert len({round(t.score.miou, 9) for t in result.trials}) == 1
    assert result.best.score.miou == result.baseline.score.miou < 1.0


def test_score_settings_counts_the_split_car_as_a_miss():
    sample = split_car_sample()
    split = score_settings([sample], PostprocessSettings(center_threshold=0.1, stuff_area=0),
                           panoptic_manifest())
    whole = score_settings([sample], PostprocessSettings(center_threshold=0.5, stuff_area=0),
                           panoptic_manifest())
    assert whole.pq_things == pytest.approx(1.0) and split.pq_things < whole.pq_things


def test_bad_searches_are_refused():
    manifest = panoptic_manifest()
    with pytest.raises(TuningError, match='cannot search grouping_stride'):
        tune_postprocess([split_car_sample()], manifest, search_space={'grouping_stride': (2,)})
    with pytest.raises(TuningError, match='no frames'):
        tune_postprocess([], manifest)
    with pytest.raises(TuningError, match='rounds'):
        tune_postprocess([split_car_sample()], manifest, rounds=0)


def run_cli(*argv):
    from seg_perception.cli import main
    return main(['tune', *argv])


@pytest.fixture(scope='module')
def lively_panoptic(tmp_path_factory):
    pytest.importorskip('torch')
    from seg_test_models import export_lively_package
    return export_lively_package('enet', 'panoptic', 64, 128,
                                 str(tmp_path_factory.mktemp('lively') / 'pkg'))


@pytest.mark.usefixtures('torch_one_thread')
def test_cli_writes_a_package_whose_graph_uses_the_tuned_settings(lively_panoptic, tmp_path,
                                                                  capsys):
    pytest.importorskip('onnxruntime')
    from seg_perception import Segmenter
    from seg_perception.data.synthetic.generator import SceneGenerator
    from seg_perception.postprocess.reference import panoptic_from_heads
    out, report = str(tmp_path / 'tuned'), str(tmp_path / 'search.json')
    assert run_cli('--model', lively_panoptic, '--frames', '2', '--rounds', '1',
                   '--device', 'cpu', '--top-k', '20', '--out', out, '--json', report) == 0
    printed = capsys.readouterr().out
    assert 'baseline: PQ' in printed and 'wrote the tuned package' in printed
    with open(report) as stream:
        search = json.load(stream)
    assert search['frames'] == 2 and len(search['trials']) >= 2
    segmenter = Segmenter.from_package(out, backend='onnxruntime')
    tuned = segmenter.manifest.postprocess
    assert dataclasses.asdict(tuned) == search['tuned']['settings']
    assert tuned.top_k == 20 and search['baseline']['settings']['top_k'] == 20
    assert segmenter.manifest.info['postprocess_tuning']['tuned'] == search['tuned']
    # The re-exported graph post-processes with the tuned settings: its panoptic map is the
    # reference post-processing's with them, on the torch heads of the same weights.
    import torch

    from seg_perception.export.graph import FusedSegmentationGraph
    from seg_perception.packages.loading import load_torch_network
    image = SceneGenerator(128, 64, seed=5).generate(0).image
    network = load_torch_network(out, segmenter.manifest)
    with torch.inference_mode():
        heads = FusedSegmentationGraph(network, segmenter.manifest).heads(
            torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32)))
    expected = panoptic_from_heads(heads['semantic'][0].numpy(), heads['center'][0].numpy(),
                                   heads['offset'][0].numpy(),
                                   segmenter.manifest.label_set.thing_ids, tuned)
    result = segmenter.segment(image)
    assert (result.panoptic == expected.panoptic).mean() > 0.999
    assert result.instance_score.shape == (20,)


def test_cli_turns_test_time_flip_on_and_off(lively_panoptic, tmp_path, capsys):
    pytest.importorskip('onnx')
    from seg_perception.packages.loading import load_model_package
    flipped, plain = str(tmp_path / 'flipped'), str(tmp_path / 'plain')
    report = str(tmp_path / 'search.json')
    assert run_cli('--model', lively_panoptic, '--frames', '1', '--rounds', '1', '--device',
                   'cpu', '--flip-test', '--out', flipped, '--json', report) == 0
    assert '(test-time flip)' in capsys.readouterr().out
    manifest = load_model_package(flipped)[0]
    assert manifest.flip_test and manifest.info['postprocess_tuning']['flip_test']
    with open(report) as stream:
        assert json.load(stream)['flip_test'] is True
    assert run_cli('--model', flipped, '--frames', '1', '--rounds', '1', '--device', 'cpu',
                   '--no-flip-test', '--out', plain) == 0
    assert '(test-time flip)' not in capsys.readouterr().out
    assert not load_model_package(plain)[0].flip_test


def test_cli_writes_the_package_at_another_network_size(lively_panoptic, tmp_path, capsys):
    pytest.importorskip('onnxruntime')
    from seg_perception import Segmenter
    from seg_perception.data.synthetic.generator import SceneGenerator
    out = str(tmp_path / 'larger')
    assert run_cli('--model', lively_panoptic, '--frames', '1', '--rounds', '1', '--device',
                   'cpu', '--size', '192x96', '--out', out) == 0
    assert 'at 192x96' in capsys.readouterr().out
    segmenter = Segmenter.from_package(out, backend='onnxruntime')
    assert (segmenter.manifest.input_width, segmenter.manifest.input_height) == (192, 96)
    assert segmenter.manifest.info['postprocess_tuning']['size'] == '192x96'
    frame = SceneGenerator(128, 64, seed=3).generate(0)
    assert segmenter.segment(frame.image).panoptic.shape == (64, 128)
    # Weights unchanged: the torch network of the new package is the old one's.
    from seg_perception.packages.loading import load_model_package, load_torch_network
    old = load_torch_network(lively_panoptic, load_model_package(lively_panoptic)[0])
    new = load_torch_network(out, segmenter.manifest)
    for (name, before), after in zip(old.state_dict().items(), new.state_dict().values()):
        assert np.allclose(before.float().numpy(), after.float().numpy()), name
    for size, message in (('196x96', 'multiples of 8'), ('wide', 'WIDTHxHEIGHT')):
        assert run_cli('--model', lively_panoptic, '--frames', '1', '--size', size) == 2
        assert message in capsys.readouterr().err


def test_cli_refuses_the_test_seed_and_semantic_models(exported_package, capsys):
    from seg_perception.data.synthetic import SYNTHETIC_TEST_SEED
    assert run_cli('--model', exported_package('enet', 'semantic'), '--frames', '1') == 2
    assert 'only panoptic models' in capsys.readouterr().err
    assert run_cli('--model', exported_package('enet', 'panoptic'), '--frames', '1',
                   '--seed', str(SYNTHETIC_TEST_SEED)) == 2
    assert 'held-out test seed' in capsys.readouterr().err
    assert run_cli('--model', exported_package('enet', 'panoptic'), '--frames', '1',
                   '--top-k', '0') == 2
    assert '--top-k: top_k 0 must be in 1..' in capsys.readouterr().err


def test_cli_reads_a_cityscapes_folder_at_another_size(lively_panoptic, tmp_path, capsys):
    from seg_perception.cli import main
    root = str(tmp_path / 'cityscapes')
    assert main(['synth', '--out', root, '--count', '2', '--seed', '9', '--size', '96x48',
                 '--split', 'val']) == 0
    assert run_cli('--model', lively_panoptic, '--data', root, '--frames', '0', '--rounds', '1',
                   '--device', 'cpu') == 0
    assert '2 frames of ' + root in capsys.readouterr().out
    assert not os.path.exists(str(tmp_path / 'tuned'))


@pytest.mark.usefixtures('torch_one_thread')
def test_cli_keeps_an_onnx_only_package_onnx_only(exported_package, tmp_path):
    pytest.importorskip('onnx')
    out = str(tmp_path / 'tuned')
    assert run_cli('--model', exported_package('enet', 'panoptic', weights=False), '--frames',
                   '1', '--rounds', '1', '--device', 'cpu', '--out', out) == 0
    assert sorted(os.listdir(out)) == ['manifest.yaml', 'model.onnx']
