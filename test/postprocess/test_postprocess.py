"""Post-processing: numpy reference on hand-made cases, and the graph version against it."""

import dataclasses
import io
from typing import Tuple

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seg_perception.manifest import PANOPTIC_OUTPUTS, PostprocessSettings, SEMANTIC_OUTPUTS
from seg_perception.postprocess import reference as pp
from seg_perception.postprocess.components import (
    instances_from_connected_components,
    panoptic_from_semantic_and_instance,
)
from seg_perception.postprocess.fused import FusedPostprocess
from seg_perception.postprocess.grid import (
    grid_nms_kernel,
    heads_to_grid,
    instance_stride_of,
    upsample_bilinear,
)
from seg_perception.postprocess.grouping import find_centers, vote_instance_classes
from seg_perception.postprocess.segments import extract_segments

# The legacy TorchScript exporter (no onnxscript here) warns that it is deprecated.
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

THINGS = tuple(range(11, 19))
NUM_CLASSES = 19
# Every op the graph may use; all parse in onnx-tensorrt for TensorRT 8.5 and 10.x.
TENSORRT_SAFE_OPS = {
    'Add', 'And', 'ArgMax', 'ArgMin', 'Cast', 'Concat', 'Constant', 'Div', 'Equal', 'Exp',
    'Gather', 'GatherElements', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'MatMul',
    'MaxPool',
    'Mul', 'ReduceMax', 'ReduceSum', 'Reshape', 'Resize', 'Slice', 'Softmax', 'Squeeze', 'Sub',
    'Expand',
    'TopK', 'Transpose', 'Unsqueeze', 'Where',
}


def one_hot_logits(semantic: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(H, W) class map -> (C, H, W) float32 logits whose argmax is that map."""
    logits = np.zeros((num_classes,) + semantic.shape, dtype=np.float32)
    np.put_along_axis(logits, semantic[None].astype(np.int64), 5.0, axis=0)
    return logits


def grid_pixel(i: int, j: int, stride: int = 4) -> Tuple[int, int]:
    """Network pixel sampled by grid cell (i, j)."""
    return stride * i + stride // 2, stride * j + stride // 2


def offsets_to(mask: np.ndarray, center_yx: Tuple[float, float], offset: np.ndarray) -> None:
    """Write (dy, dx) towards ``center_yx`` into ``offset`` (2, H, W) where ``mask``."""
    yy, xx = np.nonzero(mask)
    offset[0, yy, xx] = center_yx[0] - yy
    offset[1, yy, xx] = center_yx[1] - xx


def synthetic_heads(height: int, width: int, seed: int, instances: int = 6,
                    noise: float = 0.3):
    """Heads a trained Panoptic-DeepLab might output for a random scene, plus noise.

    Returns logits (C, H, W), center (H, W), offset (2, H, W), all float32.
    """
    rng = np.random.default_rng(seed)
    semantic = np.zeros((height, width), np.int64)
    semantic[: height // 3] = 10
    semantic[height // 3: height // 2] = 2
    label = np.zeros((height, width), np.int32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(instances):
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.1, 0.9) * width
        ry, rx = rng.uniform(0.05, 0.15) * height, rng.uniform(0.05, 0.12) * width
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        semantic[mask] = THINGS[index % 3]
        label[mask] = index + 1
    logits = rng.normal(0, 3 * noise, (NUM_CLASSES, height, width)).astype(np.float32)
    np.put_along_axis(logits, semantic[None], 4.0, axis=0)
    center = np.zeros((height, width), np.float32)
    offset = np.zeros((2, height, width), np.float32)
    for index in range(1, instances + 1):
        mask = label == index
        if mask.any():
            cy, cx = yy[mask].mean(), xx[mask].mean()
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 8.0 ** 2))
            center = np.maximum(center, blob)
            offsets_to(mask, (cy, cx), offset)
    center += rng.normal(0, 0.02, center.shape).astype(np.float32)
    offset += rng.normal(0, noise, offset.shape).astype(np.float32)
    return logits, center.astype(np.float32), offset


def export_to_session(module: FusedPostprocess, args) -> Tuple[onnx.ModelProto,
                                                               ort.InferenceSession]:
    names = ['semantic_logits', 'center', 'offset', 'center_threshold'][:len(args)]
    outputs = PANOPTIC_OUTPUTS if module.panoptic else SEMANTIC_OUTPUTS
    stream = io.BytesIO()
    torch.onnx.export(module, tuple(torch.from_numpy(a) for a in args), stream,
                      input_names=names, output_names=list(outputs), opset_version=17,
                      dynamo=False)
    model = onnx.load_from_string(stream.getvalue())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return model, ort.InferenceSession(stream.getvalue(), options,
                                       providers=['CPUExecutionProvider'])


def run_session(session: ort.InferenceSession, args) -> Tuple[np.ndarray, ...]:
    names = [i.name for i in session.get_inputs()]
    return tuple(session.run(None, dict(zip(names, args))))


def assert_matches_reference(outputs, references, exact_semantic_fraction=1.0):
    """Graph outputs (batched) against per-image ``PanopticOutput`` references."""
    for index, reference in enumerate(references):
        for name, value in zip(PANOPTIC_OUTPUTS, outputs):
            expected = getattr(reference, name)
            actual = np.asarray(value[index])
            if name == 'confidence':
                np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
            elif name == 'semantic':
                assert np.mean(actual == expected) >= exact_semantic_fraction
            else:
                np.testing.assert_array_equal(actual, expected, err_msg=name)


# --- numpy reference: hand-made cases ---------------------------------------------------------


def test_semantic_argmax_ties_lowest_and_confidence_is_softmax_max():
    logits = np.zeros((3, 2, 2), np.float32)
    logits[1, 0, 0] = logits[2, 0, 0] = 1.0  # tie between 1 and 2 -> 1
    logits[2, 1, 1] = 3.0
    semantic, confidence = pp.semantic_from_logits(logits)
    assert semantic.dtype == np.int32 and confidence.dtype == np.float32
    np.testing.assert_array_equal(semantic, [[1, 0], [0, 2]])
    softmax = np.exp(logits) / np.exp(logits).sum(0)
    np.testing.assert_allclose(confidence, softmax.max(0), rtol=1e-6)
    batched, _ = pp.semantic_from_logits(np.stack([logits, logits]))
    assert batched.shape == (2, 2, 2)
    with pytest.raises(ValueError, match='logits must be'):
        pp.semantic_from_logits(np.zeros((2, 2), np.float32))


def two_blob_scene(height: int = 32, width: int = 64):
    """Road (class 0) with a person (11) on the left and a car (13) on the right.

    The centre heatmap peaks at grid cells (3, 3) (score 0.9) and (4, 12) (score 0.8).
    """
    semantic = np.zeros((height, width), np.int64)
    person = np.zeros_like(semantic, bool)
    person[4:28, 4:24] = True
    car = np.zeros_like(semantic, bool)
    car[8:28, 36:60] = True
    semantic[person], semantic[car] = 11, 13
    center = np.zeros((height, width), np.float32)
    person_center, car_center = grid_pixel(3, 3), grid_pixel(4, 12)
    center[person_center] = 0.9
    center[car_center] = 0.8
    offset = np.zeros((2, height, width), np.float32)
    offsets_to(person, person_center, offset)
    offsets_to(car, car_center, offset)
    return one_hot_logits(semantic), center, offset, person, car


def test_two_blobs_grouped_by_offsets():
    logits, center, offset, person, car = two_blob_scene()
    settings = PostprocessSettings(stuff_area=0, top_k=8)
    result = pp.panoptic_from_heads(logits, center, offset, THINGS, settings)
    expected_instance = np.zeros(person.shape, np.int32)
    expected_instance[person], expected_instance[car] = 1, 2
    np.testing.assert_array_equal(result.instance, expected_instance)
    expected_semantic = np.where(person, 11, np.where(car, 13, 0))
    np.testing.assert_array_equal(result.semantic, expected_semantic)
    np.testing.assert_array_equal(result.panoptic, expected_semantic * 1000 + expected_instance)
    np.testing.assert_allclose(result.instance_score, [0.9, 0.8, 0, 0, 0, 0, 0, 0])
    for name in ('semantic', 'instance', 'panoptic'):
        assert getattr(result, name).dtype == np.int32


def test_offsets_decide_membership_not_distance_to_pixel():
    # The whole car points at the person's centre: it becomes part of that instance and
    # the merged instance takes the majority class in the panoptic map; the semantic map
    # keeps each pixel's argmax class.
    logits, center, offset, person, car = two_blob_scene()
    center[grid_pixel(4, 12)] = 0.0
    offsets_to(car, grid_pixel(3, 3), offset)
    result = pp.panoptic_from_heads(logits, center, offset, THINGS,
                                    PostprocessSettings(stuff_area=0))
    assert set(np.unique(result.instance[person | car])) == {1}
    # 30 grid cells of each class: the tie goes to the lower class id, person (11).
    assert set(np.unique(result.panoptic[person | car])) == {11 * 1000 + 1}
    np.testing.assert_array_equal(result.semantic, np.where(person, 11, np.where(car, 13, 0)))


def test_nms_suppresses_neighbours_and_keeps_distant_peaks():
    heat = np.zeros((8, 16), np.float32)
    heat[2, 2], heat[2, 3] = 0.9, 0.85  # neighbours: one survives
    heat[6, 12] = 0.7
    centers = find_centers(heat, 0.1, nms_kernel=3, top_k=5)
    assert centers.count == 2
    assert (centers.y[:2].tolist(), centers.x[:2].tolist()) == ([2, 6], [2, 12])
    np.testing.assert_allclose(centers.score, [0.9, 0.7, 0, 0, 0])
    assert find_centers(heat, 0.1, nms_kernel=1, top_k=5).count == 3
    # kernel 7 in network pixels is radius 1 on the stride-4 grid
    assert grid_nms_kernel(7, 4) == 3 and grid_nms_kernel(13, 4) == 5
    assert grid_nms_kernel(7, 1) == 7


def test_threshold_is_strict_and_overridable():
    heat = np.zeros((8, 8), np.float32)
    heat[2, 2], heat[6, 6] = 0.5, 0.1
    assert find_centers(heat, 0.1, 3, 10).count == 1  # 0.1 is not above 0.1
    assert find_centers(heat, 0.05, 3, 10).count == 2
    assert find_centers(heat, 0.5, 3, 10).count == 0
    logits, center, offset, person, _ = two_blob_scene()
    result = pp.panoptic_from_heads(logits, center, offset, THINGS, PostprocessSettings(),
                                    center_threshold=0.85)
    assert set(np.unique(result.instance)) == {0, 1}  # only the 0.9 person centre
    assert np.all(result.instance[person] == 1)


def test_top_k_keeps_highest_in_order():
    heat = np.zeros((16, 16), np.float32)
    peaks = {(1, 1): 0.3, (1, 9): 0.8, (9, 1): 0.5, (9, 9): 0.9, (14, 14): 0.6}
    for (y, x), score in peaks.items():
        heat[y, x] = score
    centers = find_centers(heat, 0.1, 3, top_k=3)
    assert centers.valid.tolist() == [True, True, True]
    assert list(zip(centers.y.tolist(), centers.x.tolist())) == [(9, 9), (1, 9), (14, 14)]
    assert find_centers(heat, 0.1, 3, top_k=1000).valid.size == 256  # K = min(top_k, cells)


def test_majority_vote_and_ties():
    assignment = np.array([[1, 1, 1, 1, 1, 2, 2, 0]])
    semantic = np.array([[12, 12, 12, 11, 11, 14, 13, 11]])
    classes, cells = vote_instance_classes(assignment, semantic, THINGS, slots=3)
    assert classes[:2].tolist() == [12, 13]  # 3 vs 2 votes; 1 vs 1 -> lowest class
    assert cells.tolist() == [5, 2, 0]
    stuff_votes = np.array([[0, 0, 11]])
    classes, cells = vote_instance_classes(np.array([[1, 1, 1]]), stuff_votes, THINGS, 1)
    assert classes.tolist() == [11] and cells.tolist() == [1]  # stuff cells do not vote


def test_min_instance_area_drops_small_instances():
    logits, center, offset, person, car = two_blob_scene()
    small = pp.panoptic_from_heads(logits, center, offset, THINGS,
                                   PostprocessSettings(stuff_area=0, min_instance_area=400))
    # grid area: person 6x5 cells = 480 px kept; car 5x6 cells = 480 px kept
    assert set(np.unique(small.instance)) == {0, 1, 2}
    dropped = pp.panoptic_from_heads(logits, center, offset, THINGS,
                                     PostprocessSettings(stuff_area=0, min_instance_area=481))
    assert not dropped.instance.any()
    np.testing.assert_array_equal(dropped.panoptic[car], 13000)
    assert dropped.instance_score.max() == 0


def grouped(heads, **settings) -> pp.PanopticOutput:
    """Reference post-processing of (logits, center, offset) with ``stuff_area`` 0 and
    ``settings``."""
    return pp.panoptic_from_heads(*heads, THINGS, PostprocessSettings(stuff_area=0, **settings))


def person_pointing_at_car_scene():
    """``two_blob_scene`` where the right half of the person points at the car's centre (an
    offset head that pulls a person standing by a car into the car)."""
    logits, center, offset, person, car = two_blob_scene()
    pulled = person.copy()
    pulled[:, :16] = False  # grid cells 4-5
    offsets_to(pulled, grid_pixel(4, 12), offset)
    return logits, center, offset, person, car, pulled


def test_class_aware_grouping_keeps_a_person_out_of_a_car():
    logits, center, offset, person, car, pulled = person_pointing_at_car_scene()
    plain = grouped((logits, center, offset))
    assert np.all(plain.instance[pulled] == 2) and np.all(plain.instance[person & ~pulled] == 1)
    aware = grouped((logits, center, offset), class_aware_grouping=True)
    assert np.all(aware.instance[person] == 1) and np.all(aware.instance[car] == 2)
    np.testing.assert_array_equal(aware.panoptic[person], 11001)
    np.testing.assert_array_equal(aware.semantic, plain.semantic)


def test_class_aware_grouping_falls_back_to_any_class_and_votes_off_thing_centres():
    logits, center, offset, person, car, pulled = person_pointing_at_car_scene()
    # No person centre: the person's cells still join the nearest centre, the car's.
    center[grid_pixel(3, 3)] = 0.0
    # The car's peak lies on road: its class comes from the vote (car), not its own cell.
    road_cell = grid_pixel(1, 12)
    center[grid_pixel(4, 12)], center[road_cell] = 0.0, 0.8
    offsets_to(car | person, road_cell, offset)
    result = grouped((logits, center, offset), class_aware_grouping=True)
    assert np.all(result.instance[person | car] == 1)
    assert set(np.unique(result.panoptic[person | car])) == {11001}  # 30 vs 30: lower id


def spurious_peak_scene():
    """``two_blob_scene`` with a second car peak at grid (2, 9) that no car pixel points at:
    the car's top-left 2x2 cells point at grid (0, 10), 2.2 cells from that peak, 4.5 from
    the car's own and 7.6 from the person's, so they join the spurious peak.
    """
    logits, center, offset, person, car = two_blob_scene()
    center[grid_pixel(2, 9)] = 0.5
    corner = np.zeros_like(car)
    corner[8:16, 36:44] = True
    offsets_to(corner, grid_pixel(0, 10), offset)
    return logits, center, offset, person, car, corner


def test_min_center_votes_drops_a_peak_no_pixel_points_at():
    *heads, person, car, corner = spurious_peak_scene()
    plain = grouped(heads)
    assert np.all(plain.instance[corner] == 3) and np.all(plain.instance[car & ~corner] == 2)
    voted = grouped(heads, min_center_votes=16)
    assert np.all(voted.instance[car] == 2) and np.all(voted.instance[person] == 1)
    assert voted.instance_score[2] == 0 and voted.instance_score[1] == pytest.approx(0.8)
    # The car's centre gets the votes of its 26 other cells (416 px); the person's 480 px.
    assert set(np.unique(grouped(heads, min_center_votes=416).instance)) == {0, 1, 2}
    assert set(np.unique(grouped(heads, min_center_votes=417).instance)) == {0, 1}
    # A radius of 10 px (2.5 cells) takes in the corner's targets, 2.2 cells away.
    wide = grouped(heads, min_center_votes=16, center_vote_radius=10)
    assert np.all(wide.instance[corner] == 3)


def test_stuff_area_turns_small_stuff_void_in_panoptic_only():
    semantic = np.zeros((32, 64), np.int64)
    semantic[:8, :8] = 5  # 64 px of pole: 4 grid cells = 64 px
    heat = np.zeros((32, 64), np.float32)
    offset = np.zeros((2, 32, 64), np.float32)
    logits = one_hot_logits(semantic)
    kept = pp.panoptic_from_heads(logits, heat, offset, THINGS, PostprocessSettings(stuff_area=64))
    assert np.all(kept.panoptic[:8, :8] == 5000)
    voided = pp.panoptic_from_heads(logits, heat, offset, THINGS,
                                    PostprocessSettings(stuff_area=65))
    assert np.all(voided.panoptic[:8, :8] == 255000)
    assert np.all(voided.semantic[:8, :8] == 5)
    assert np.all(voided.panoptic[8:] == 0)


def test_no_centres_leaves_things_without_instances():
    logits, center, offset, person, car = two_blob_scene()
    result = pp.panoptic_from_heads(logits, np.zeros_like(center), offset, THINGS,
                                    PostprocessSettings(stuff_area=0))
    assert not result.instance.any() and not result.instance_score.any()
    np.testing.assert_array_equal(result.panoptic[person], 11000)
    np.testing.assert_array_equal(result.panoptic[car], 13000)


def test_bad_settings_and_sizes_are_named():
    logits, center, offset, _, _ = two_blob_scene()
    with pytest.raises(ValueError, match='grouping_stride 4'):
        pp.panoptic_from_heads(logits[:, :30], center[:30], offset[:, :30], THINGS)
    with pytest.raises(ValueError, match='nms_kernel'):
        pp.panoptic_from_heads(logits, center, offset, THINGS, PostprocessSettings(nms_kernel=4))
    with pytest.raises(ValueError, match='thing id 19'):
        FusedPostprocess(19, (19,), PostprocessSettings(), height=32, width=64)
    with pytest.raises(ValueError, match='top_k'):
        FusedPostprocess(19, THINGS, PostprocessSettings(top_k=1000), height=32, width=64)
    with pytest.raises(ValueError, match='offset'):
        pp.panoptic_from_heads(logits, center, offset[:1], THINGS)
    for bad, message in (({'min_center_votes': -1}, 'min_center_votes must not be negative'),
                         ({'center_vote_radius': 0}, 'center_vote_radius must be at least 1'),
                         ({'class_aware_grouping': 'yes'}, 'class_aware_grouping must be true')):
        with pytest.raises(ValueError, match=message):
            pp.panoptic_from_heads(logits, center, offset, THINGS, PostprocessSettings(**bad))
        with pytest.raises(ValueError, match=message):
            FusedPostprocess(19, THINGS, PostprocessSettings(**bad), height=32, width=64)


def test_connected_components_per_thing_class():
    semantic = np.zeros((10, 12), np.uint8)
    semantic[1:3, 1:3] = 11
    semantic[3, 3] = 11  # touches the first blob diagonally only
    semantic[6:9, 1:4] = 11
    semantic[1:4, 7:11] = 13
    semantic[6:9, 7:11] = 2  # stuff: no instance
    eight = instances_from_connected_components(semantic, THINGS)
    assert eight.dtype == np.int32
    assert eight[1, 1] == eight[3, 3] == 1 and eight[7, 2] == 2 and eight[2, 8] == 3
    assert not eight[semantic == 2].any() and not eight[semantic == 0].any()
    four = instances_from_connected_components(semantic, THINGS, connectivity=4)
    assert four.max() == 4 and four[3, 3] != four[1, 1]
    large = instances_from_connected_components(semantic, THINGS, min_area=5)
    assert large[1, 1] == 1 and large[7, 2] == 2 and large[2, 8] == 3
    only_car = instances_from_connected_components(semantic, THINGS, min_area=10)
    assert only_car.max() == 1 and np.all(only_car[semantic == 13] == 1)  # areas 5, 9, 12
    largest = instances_from_connected_components(semantic, THINGS, max_instances=1)
    assert largest.max() == 1 and np.all(largest[semantic == 13] == 1)
    with pytest.raises(ValueError, match='connectivity'):
        instances_from_connected_components(semantic, THINGS, connectivity=6)
    panoptic = panoptic_from_semantic_and_instance(semantic, eight, 1000, 255)
    assert panoptic[1, 1] == 11001 and panoptic[7, 8] == 2000 and panoptic.dtype == np.int32
    with pytest.raises(ValueError, match='label_divisor'):
        panoptic_from_semantic_and_instance(semantic, eight * 1000, 1000, 255)


def test_extract_segments_bbox_area_and_scores():
    panoptic = np.full((6, 8), 0, np.int32)  # road everywhere
    panoptic[1:3, 2:5] = 11001
    panoptic[4, 6:8] = 13002
    panoptic[5, 0] = 255000  # void
    confidence = np.full((6, 8), 0.5, np.float32)
    confidence[1:3, 2:5] = 0.9
    segments = extract_segments(panoptic, THINGS, 1000, 255, confidence=confidence,
                                instance_score=np.array([0.7, 0.6, 0.0], np.float32))
    by_id = {s.id: s for s in segments}
    assert sorted(by_id) == [0, 11001, 13002]
    road, person, car = by_id[0], by_id[11001], by_id[13002]
    assert (road.category_id, road.is_thing, road.area) == (0, False, 48 - 6 - 2 - 1)
    assert road.bbox == (0, 0, 8, 6) and road.score == pytest.approx(0.5)
    assert (person.category_id, person.is_thing, person.area) == (11, True, 6)
    assert person.bbox == (2, 1, 3, 2) and person.score == pytest.approx(0.7)
    assert car.bbox == (6, 4, 2, 1) and car.score == pytest.approx(0.6)
    no_scores = extract_segments(panoptic, THINGS, confidence=confidence)
    assert {s.id: s.score for s in no_scores}[11001] == pytest.approx(0.9)


# --- graph version against the reference ------------------------------------------------------


def test_graph_matches_reference_on_hand_made_scene_and_threshold_is_an_input():
    logits, center, offset, person, car = two_blob_scene()
    settings = PostprocessSettings(stuff_area=0, top_k=8)
    things = (11, 13, 17)  # not a contiguous range: the graph looks thing pixels up by Gather
    module = FusedPostprocess(NUM_CLASSES, things, settings, height=32, width=64).eval()
    assert module.thing_range is None
    args = (logits[None], center[None, None], offset[None], np.array([0.1], np.float32))
    _, session = export_to_session(module, args)
    for threshold in (0.1, 0.85, 0.95):
        args = args[:3] + (np.array([threshold], np.float32),)
        reference = pp.panoptic_from_heads(logits, center, offset, things, settings,
                                           center_threshold=threshold)
        assert_matches_reference(run_session(session, args), [reference])
    assert run_session(session, args)[2].max() == 0  # 0.95: no centre at run time


@pytest.mark.parametrize('scene, settings', [
    (person_pointing_at_car_scene, PostprocessSettings(stuff_area=0, class_aware_grouping=True)),
    (spurious_peak_scene, PostprocessSettings(stuff_area=0, min_center_votes=16)),
    (spurious_peak_scene, PostprocessSettings(stuff_area=0, min_center_votes=417,
                                              class_aware_grouping=True)),
])
def test_graph_matches_reference_with_center_votes_and_class_aware_grouping(scene, settings):
    logits, center, offset = scene()[:3]
    module = FusedPostprocess(NUM_CLASSES, THINGS, settings, height=32, width=64).eval()
    args = (logits[None], center[None, None], offset[None],
            np.array([settings.center_threshold], np.float32))
    reference = pp.panoptic_from_heads(logits, center, offset, THINGS, settings)
    with torch.no_grad():
        eager = [t.numpy() for t in module(*(torch.from_numpy(a) for a in args))]
    assert_matches_reference(eager, [reference])
    model, session = export_to_session(module, args)
    assert_matches_reference(run_session(session, args), [reference])
    assert {node.op_type for node in model.graph.node} <= TENSORRT_SAFE_OPS


@pytest.mark.parametrize('extra', [{}, {'min_center_votes': 64, 'class_aware_grouping': True}])
def test_graph_eager_and_onnx_match_reference_on_synthetic_heads(extra):
    torch.set_num_threads(1)
    height, width = 64, 128
    heads = [synthetic_heads(height, width, seed) for seed in (1, 2)]
    if extra:  # second peaks that no offset points at, for the centre votes to drop
        for index, (_, center, _) in enumerate(heads):
            rng = np.random.default_rng(10 + index)
            for y, x in zip(rng.integers(16, 48, 6), rng.integers(8, 120, 6)):
                center[y - 1:y + 2, x - 1:x + 2] = 0.6
    logits, center, offset = (np.stack(parts) for parts in zip(*heads))
    center = center[:, None]
    plain = PostprocessSettings(stuff_area=256, min_instance_area=32, top_k=50)
    settings = dataclasses.replace(plain, **extra)
    references = [pp.panoptic_from_heads(*head, THINGS, settings) for head in heads]
    assert all(np.unique(r.instance).size >= 4 for r in references)  # a real grouping test
    if extra:  # the new steps change the result here
        assert any(np.any(r.panoptic != pp.panoptic_from_heads(*head, THINGS, plain).panoptic)
                   for r, head in zip(references, heads))
    module = FusedPostprocess(NUM_CLASSES, THINGS, settings, height=height,
                              width=width).eval()
    threshold = np.array([settings.center_threshold], np.float32)
    with torch.no_grad():
        eager = module(*(torch.from_numpy(a) for a in (logits, center, offset, threshold)))
    assert_matches_reference([t.numpy() for t in eager], references)
    model, session = export_to_session(module, (logits, center, offset, threshold))
    outputs = run_session(session, (logits, center, offset, threshold))
    assert_matches_reference(outputs, references)
    onnx.checker.check_model(model)
    assert {node.op_type for node in model.graph.node} <= TENSORRT_SAFE_OPS
    types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert types == {'semantic': onnx.TensorProto.INT32, 'confidence': onnx.TensorProto.FLOAT,
                     'instance': onnx.TensorProto.INT32, 'panoptic': onnx.TensorProto.INT32,
                     'instance_score': onnx.TensorProto.FLOAT}
    assert outputs[4].shape == (2, 50)


@pytest.mark.parametrize('instance_stride', [2, 4, 8, 16])
def test_graph_matches_reference_at_other_instance_strides(instance_stride):
    """Heads at the network's instance stride r: the graph slices (r < 4), passes (r = 4) or
    resizes (r > 4) them onto the grid exactly as the numpy reference does."""
    torch.set_num_threads(1)
    # Coarse heads get a larger network, as they have in practice (16 x 32 head cells).
    height = max(64, 16 * instance_stride)
    width = 2 * height
    logits, center, offset = synthetic_heads(height, width, seed=4)
    pool = torch.nn.AvgPool2d(instance_stride)
    center_r = pool(torch.from_numpy(center)[None, None])[0].numpy()
    offset_r = pool(torch.from_numpy(offset)[None])[0].numpy()
    settings = PostprocessSettings(stuff_area=256, top_k=50)
    reference = pp.panoptic_from_heads(logits, center_r, offset_r, THINGS, settings)
    assert np.unique(reference.instance).size >= 3  # the coarse heads still group
    module = FusedPostprocess(NUM_CLASSES, THINGS, settings, height=height, width=width,
                              instance_stride=instance_stride).eval()
    args = (logits[None], center_r[None], offset_r[None],
            np.array([settings.center_threshold], np.float32))
    with torch.no_grad():
        eager = [t.numpy() for t in module(*(torch.from_numpy(a) for a in args))]
    _, session = export_to_session(module, args)
    for outputs in (eager, run_session(session, args)):
        if instance_stride <= settings.grouping_stride:  # slicing: bit-identical inputs
            assert_matches_reference(outputs, [reference])
        else:
            # Bilinear resizes of torch, ONNX Runtime and numpy round differently in the
            # last bit, which can move a cell on a bisector between two centres.
            assert np.mean(outputs[0][0] == reference.semantic) >= 0.99
            assert panoptic_quality(outputs[3][0], reference.panoptic) >= 0.99


def panoptic_quality(predicted: np.ndarray, reference: np.ndarray) -> float:
    from seg_perception.evaluation.metrics import PanopticQuality
    from seg_perception.labels import cityscapes
    quality = PanopticQuality(cityscapes(), label_divisor=1000)
    quality.update(predicted, reference)
    return quality.result().pq


def test_upsample_bilinear_is_onnx_resize_half_pixel():
    rng = np.random.default_rng(5)
    maps = rng.normal(size=(2, 3, 5)).astype(np.float32)
    for factor in (2, 4):
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(maps)[None], scale_factor=float(factor), mode='bilinear',
            align_corners=False)[0].numpy()
        np.testing.assert_allclose(upsample_bilinear(maps, factor), expected, atol=1e-6)
    assert heads_to_grid(maps, 4, 4) is maps
    np.testing.assert_array_equal(heads_to_grid(maps, 1, 2), maps[:, 1::2, 1::2])
    with pytest.raises(ValueError, match='not a multiple'):
        heads_to_grid(maps, 3, 4)
    with pytest.raises(ValueError, match='one integer stride'):
        instance_stride_of(64, 128, (16, 16))


def test_semantic_only_graph_and_top_k_padding():
    logits, center, offset = synthetic_heads(16, 16, seed=3)  # 16 grid cells < top_k
    semantic_module = FusedPostprocess(NUM_CLASSES, THINGS, panoptic=False, height=16, width=16)
    model, session = export_to_session(semantic_module, (logits[None],))
    semantic, confidence = run_session(session, (logits[None],))
    expected = pp.semantic_from_logits(logits)
    np.testing.assert_array_equal(semantic[0], expected[0])
    np.testing.assert_allclose(confidence[0], expected[1], rtol=1e-5)
    assert [o.name for o in model.graph.output] == list(SEMANTIC_OUTPUTS)
    panoptic_module = FusedPostprocess(NUM_CLASSES, THINGS, PostprocessSettings(top_k=20),
                                       height=16, width=16)
    with torch.no_grad():
        outputs = panoptic_module(torch.from_numpy(logits[None]),
                                  torch.from_numpy(center[None, None]),
                                  torch.from_numpy(offset[None]))
    assert outputs[4].shape == (1, 20) and not outputs[4][0, 16:].any()


def test_graph_matches_reference_on_a_registered_network():
    from seg_perception.models import build_model, list_models
    if 'enet' not in list_models():
        pytest.skip('enet is not registered yet')
    torch.manual_seed(0)
    torch.set_num_threads(1)
    height, width = 64, 128
    network = build_model('enet', num_classes=NUM_CLASSES, panoptic=True).eval()
    with torch.no_grad():
        heads = network(torch.randn(2, 3, height, width))
    logits, center, offset = (heads[k].float().numpy() for k in ('semantic', 'center', 'offset'))
    # An untrained centre head is nearly flat; stretch it so NMS and top-k have peaks to find.
    center = (center - center.mean()) / (center.std() + 1e-6) * 0.2
    settings = PostprocessSettings(stuff_area=128)
    threshold = np.array([0.1], np.float32)
    references = [pp.panoptic_from_heads(logits[i], center[i], offset[i], THINGS, settings)
                  for i in range(2)]
    module = FusedPostprocess(NUM_CLASSES, THINGS, settings, height=height, width=width,
                              instance_stride=network.instance_stride)
    with torch.no_grad():
        eager = module(*(torch.from_numpy(a) for a in (logits, center, offset, threshold)))
    assert_matches_reference([t.numpy() for t in eager], references,
                             exact_semantic_fraction=0.999)
    _, session = export_to_session(module, (logits, center, offset, threshold))
    assert_matches_reference(run_session(session, (logits, center, offset, threshold)),
                             references, exact_semantic_fraction=0.999)
