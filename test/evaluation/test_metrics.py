"""Metrics against hand-computed cases: mIoU from a confusion matrix, PQ / SQ / RQ."""

import math

import numpy as np
import pytest

from seg_perception.evaluation.metrics import ConfusionMatrix, panoptic_quality, PanopticQuality
from seg_perception.labels import cityscapes, LabelSet

DIV = 1000
ROAD, SKY, CAR, PERSON = 0, 1, 2, 3
VOID = 255


def small_label_set() -> LabelSet:
    return LabelSet(name='small', names=('road', 'sky', 'car', 'person'),
                    colors=((1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4)), thing_ids=(CAR, PERSON))


def pan(cls: int, inst: int = 0) -> int:
    return cls * DIV + inst


# ----------------------------------------------------------------------------- mIoU

def test_confusion_matrix_hand_built():
    gt = np.array([[0, 0, 1, 1],
                   [0, 2, 2, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1],
                     [0, 2, 0, 2]], dtype=np.uint8)
    cm = ConfusionMatrix(num_classes=4)
    cm.update(pred, gt)
    expected = np.array([[2, 1, 0, 0],
                         [0, 2, 0, 0],
                         [1, 0, 1, 0],
                         [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm.matrix, expected)
    # class 0: tp 2, gt 3, pred 3 -> 2/4; class 1: 2/3; class 2: 1/2; class 3: absent
    iou = cm.iou()
    np.testing.assert_allclose(iou[:3], [0.5, 2 / 3, 0.5])
    assert math.isnan(iou[3])
    assert cm.mean_iou() == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)  # the void pixel is not counted
    summary = cm.to_dict(['a', 'b', 'c', 'd'])
    assert summary['iou']['d'] is None
    assert summary['mean_iou'] == pytest.approx(cm.mean_iou())


def test_confusion_matrix_ignore_index_and_void_prediction():
    gt = np.array([7, 7, 0, 1], dtype=np.int32)
    pred = np.array([1, 0, 0, 7], dtype=np.int32)
    cm = ConfusionMatrix(num_classes=2, ignore_index=7)
    cm.update(pred, gt)
    # gt 7 pixels ignored whatever was predicted; a void prediction is a miss for class 1
    np.testing.assert_array_equal(cm.matrix, [[1, 0], [0, 0]])
    np.testing.assert_allclose(cm.iou(), [1.0, 0.0])
    assert cm.pixel_accuracy() == pytest.approx(0.5)


def test_confusion_matrix_merge_equals_joint_update():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, size=(2, 8, 8))
    gt[gt == 4] = 255
    pred = rng.integers(0, 4, size=(2, 8, 8))
    joint = ConfusionMatrix(4)
    joint.update(pred, gt)
    first, second = ConfusionMatrix(4), ConfusionMatrix(4)
    first.update(pred[0], gt[0])
    second.update(pred[1], gt[1])
    np.testing.assert_array_equal((first + second).matrix, joint.matrix)
    first += second
    np.testing.assert_array_equal(first.matrix, joint.matrix)
    with pytest.raises(ValueError, match='cannot merge'):
        first += ConfusionMatrix(5)


@pytest.mark.parametrize('pred_value, gt_value, message', [
    (4, 0, 'prediction contains value 4'),
    (0, 9, 'ground truth contains value 9'),
    (0, -1, 'ground truth contains value -1'),
    (300, 0, 'prediction contains value 300'),
])
def test_confusion_matrix_rejects_out_of_range(pred_value, gt_value, message):
    cm = ConfusionMatrix(4)
    with pytest.raises(ValueError, match=message):
        cm.update(np.array([pred_value]), np.array([gt_value]))


def test_confusion_matrix_rejects_shape_mismatch_and_bad_ignore():
    with pytest.raises(ValueError, match='shape'):
        ConfusionMatrix(3).update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match='ignore_index 2'):
        ConfusionMatrix(3, ignore_index=2)


def test_mean_iou_nan_when_empty():
    assert math.isnan(ConfusionMatrix(3).mean_iou())


# ----------------------------------------------------------------------------- PQ

def two_car_scene() -> np.ndarray:
    """8x8: road top half, sky bottom half, two 2x4 cars (4 pixels wide) on the road."""
    gt = np.full((8, 8), pan(ROAD), dtype=np.int32)
    gt[4:] = pan(SKY)
    gt[0:2, 0:4] = pan(CAR, 1)
    gt[2:4, 4:8] = pan(CAR, 2)
    return gt


def test_perfect_prediction_is_one():
    gt = two_car_scene()
    result = panoptic_quality(gt.copy(), gt, small_label_set(), DIV)
    assert (result.pq, result.sq, result.rq) == (1.0, 1.0, 1.0)
    assert result.pq_things == 1.0 and result.pq_stuff == 1.0
    assert (result.tp, result.fp, result.fn) == (4, 0, 0)
    # person occurs nowhere: excluded from the averages, nan in the per-class table
    assert result.num_classes == 3 and result.num_things == 1 and result.num_stuff == 2
    assert math.isnan(result.per_class['person'].pq)


def test_instance_ids_need_not_agree():
    gt = two_car_scene()
    pred = gt.copy()
    pred[gt == pan(CAR, 1)] = pan(CAR, 7)
    pred[gt == pan(CAR, 2)] = pan(CAR, 3)
    assert panoptic_quality(pred, gt, small_label_set(), DIV).pq == 1.0


def test_one_missed_instance():
    gt = two_car_scene()
    pred = gt.copy()
    pred[gt == pan(CAR, 2)] = pan(ROAD)  # car 2 predicted as road
    result = panoptic_quality(pred, gt, small_label_set(), DIV)
    car = result.per_class['car']
    assert (car.tp, car.fp, car.fn) == (1, 0, 1)
    assert car.pq == pytest.approx(1 / 1.5) and car.sq == 1.0 and car.rq == pytest.approx(1 / 1.5)
    road = result.per_class['road']
    # road: 16 gt pixels, 24 predicted (16 + 8 of car 2): IoU 16/24, still matched
    assert (road.tp, road.fp, road.fn) == (1, 0, 0)
    assert road.pq == pytest.approx(2 / 3)
    assert result.pq == pytest.approx((1 / 1.5 + 2 / 3 + 1.0) / 3)
    assert result.pq_things == pytest.approx(1 / 1.5)
    assert result.pq_stuff == pytest.approx((2 / 3 + 1.0) / 2)


def test_one_false_positive():
    gt = two_car_scene()
    pred = gt.copy()
    pred[6:8, 0:2] = pan(PERSON, 1)  # a person on the sky
    result = panoptic_quality(pred, gt, small_label_set(), DIV)
    person = result.per_class['person']
    assert (person.tp, person.fp, person.fn) == (0, 1, 0)
    assert person.pq == 0.0 and person.sq == 0.0 and person.rq == 0.0
    sky = result.per_class['sky']
    assert sky.pq == pytest.approx(28 / 32)
    assert result.num_things == 2
    assert result.pq_things == pytest.approx(0.5)


def test_iou_exactly_half_is_not_a_match():
    gt = two_car_scene()
    pred = gt.copy()
    pred[0:2, 2:4] = pan(ROAD)  # car 1 keeps 4 of its 8 pixels: IoU exactly 0.5
    result = panoptic_quality(pred, gt, small_label_set(), DIV)
    car = result.per_class['car']
    assert (car.tp, car.fp, car.fn) == (1, 1, 1)
    pred[0, 2] = pan(CAR, 1)  # 5 of its 8 pixels and nothing outside: IoU 5/8 > 0.5
    car = panoptic_quality(pred, gt, small_label_set(), DIV).per_class['car']
    assert (car.tp, car.fp, car.fn) == (2, 0, 0)
    assert car.iou_sum == pytest.approx(1 + 5 / 8)


def test_void_pixels_are_ignored():
    gt = two_car_scene()
    gt[0:2, 0:2] = pan(VOID)  # left half of car 1 is void in the ground truth
    pred = two_car_scene()  # the prediction still covers the full 8-pixel car
    result = panoptic_quality(pred, gt, small_label_set(), DIV)
    car = result.per_class['car']
    # the 4 void pixels are removed from the union: IoU 4 / (4 + 8 - 4 - 4) = 1
    assert (car.tp, car.fp, car.fn) == (2, 0, 0)
    assert car.sq == 1.0
    # a predicted segment lying mostly (3 of 4 pixels) on void is not a false positive
    gt[6:8, 0:2] = pan(VOID)
    gt[7, 1] = pan(SKY)
    pred[6:8, 0:2] = pan(PERSON, 1)
    person = panoptic_quality(pred, gt, small_label_set(), DIV).per_class['person']
    assert (person.tp, person.fp, person.fn) == (0, 0, 0)
    # exactly half on void is still a false positive
    gt[7, 0] = pan(SKY)
    person = panoptic_quality(pred, gt, small_label_set(), DIV).per_class['person']
    assert person.fp == 1


def test_void_prediction_is_not_a_segment():
    gt = two_car_scene()
    pred = gt.copy()
    pred[6:8, 0:2] = pan(VOID)
    result = panoptic_quality(pred, gt, small_label_set(), DIV)
    assert result.fp == 0
    assert result.per_class['sky'].sq == pytest.approx(28 / 32)


def test_crowd_region():
    gt = two_car_scene()
    gt[5:8, 4:8] = pan(CAR, 0)  # a 12-pixel car crowd (thing class without instance)
    pred = two_car_scene()
    # no prediction on the crowd: it is not a false negative
    result = panoptic_quality(pred, gt, small_label_set(), DIV)
    assert result.per_class['car'].fn == 0
    assert result.per_class['car'].tp == 2
    # a car predicted mostly (4 of 5 pixels) on the crowd is not a false positive
    pred[5:7, 6:8] = pan(CAR, 9)
    pred[4, 6] = pan(CAR, 9)
    car = panoptic_quality(pred, gt, small_label_set(), DIV).per_class['car']
    assert (car.tp, car.fp, car.fn) == (2, 0, 0)
    # the same segment predicted as a person (other class than the crowd) is a false positive
    pred[pred == pan(CAR, 9)] = pan(PERSON, 9)
    person = panoptic_quality(pred, gt, small_label_set(), DIV).per_class['person']
    assert person.fp == 1
    # a crowd prediction that covers the crowd exactly is never a match (crowd is not scored)
    pred = gt.copy()
    car = panoptic_quality(pred, gt, small_label_set(), DIV).per_class['car']
    assert (car.tp, car.fp, car.fn) == (2, 0, 0)


def test_stuff_instance_zero_is_a_segment_not_crowd():
    gt = np.full((4, 4), pan(SKY), dtype=np.int32)
    pred = gt.copy()
    pred[0, :] = pan(ROAD)
    result = panoptic_quality(pred, gt, small_label_set(), DIV)
    sky, road = result.per_class['sky'], result.per_class['road']
    assert (sky.tp, sky.fn) == (1, 0) and sky.sq == pytest.approx(12 / 16)
    assert (road.tp, road.fp, road.fn) == (0, 1, 0)
    assert result.pq_stuff == pytest.approx((12 / 16 + 0) / 2)
    assert math.isnan(result.pq_things) and result.num_things == 0


def test_accumulator_sums_counts_over_frames_and_merges():
    gt = two_car_scene()
    missed = gt.copy()
    missed[gt == pan(CAR, 2)] = pan(ROAD)
    labels = small_label_set()
    sequential = PanopticQuality(labels, DIV)
    sequential.update(gt, gt)
    sequential.update(missed, gt)
    first, second = PanopticQuality(labels, DIV), PanopticQuality(labels, DIV)
    first.update(gt, gt)
    second.update(missed, gt)
    merged = (first + second).result()
    car = merged.per_class['car']
    assert (car.tp, car.fp, car.fn) == (3, 0, 1)
    assert car.pq == pytest.approx(3 / 3.5)
    assert merged.to_dict() == sequential.result().to_dict()
    first += second
    assert first.result().to_dict() == merged.to_dict()
    with pytest.raises(ValueError, match='cannot merge'):
        first += PanopticQuality(labels, 256)


def test_panoptic_rejects_bad_input():
    labels = small_label_set()
    gt = two_car_scene()
    with pytest.raises(ValueError, match='class 7'):
        panoptic_quality(gt, np.full_like(gt, 7 * DIV + 1), labels, DIV)
    with pytest.raises(ValueError, match='shape'):
        panoptic_quality(gt[:4], gt, labels, DIV)
    with pytest.raises(ValueError, match='negative'):
        panoptic_quality(gt - 10, gt, labels, DIV)


def test_panoptic_result_to_dict_is_plain():
    gt = two_car_scene()
    data = panoptic_quality(gt, gt, small_label_set(), DIV).to_dict()
    assert data['pq'] == 1.0
    assert data['per_class']['person']['pq'] is None


def test_cityscapes_sized_frame_matches_counts():
    rng = np.random.default_rng(1)
    labels = cityscapes()
    semantic = rng.integers(0, 19, size=(64, 128))
    gt = semantic * DIV + np.where(np.isin(semantic, labels.thing_ids), 1, 0)
    result = panoptic_quality(gt, gt, labels, DIV)
    assert result.pq == 1.0 and result.num_classes == 19


def coco_reference_counts(pred, gt, labels, divisor):
    """A direct transcription of panopticapi's pq_compute_single_core, segment by segment."""
    void = labels.void_id
    gt_ids, gt_areas = np.unique(gt, return_counts=True)
    pred_ids, pred_areas = np.unique(pred, return_counts=True)
    gt_segments = {
        int(i): {'area': int(a), 'category': int(i) // divisor,
                 'iscrowd': labels.is_thing(int(i) // divisor) and int(i) % divisor == 0}
        for i, a in zip(gt_ids, gt_areas) if int(i) // divisor != void}
    pred_segments = {int(i): {'area': int(a), 'category': int(i) // divisor}
                     for i, a in zip(pred_ids, pred_areas) if int(i) // divisor != void}
    pairs = {}
    for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist()):
        g = -1 if g // divisor == void else g
        pairs[(g, p)] = pairs.get((g, p), 0) + 1
    tp, fp, fn = [0] * labels.num_classes, [0] * labels.num_classes, [0] * labels.num_classes
    iou_sum = [0.0] * labels.num_classes
    gt_matched, pred_matched = set(), set()
    for (g, p), inter in pairs.items():
        if g not in gt_segments or p not in pred_segments or gt_segments[g]['iscrowd']:
            continue
        if gt_segments[g]['category'] != pred_segments[p]['category']:
            continue
        union = pred_segments[p]['area'] + gt_segments[g]['area'] - inter \
            - pairs.get((-1, p), 0)
        if inter / union > 0.5:
            category = gt_segments[g]['category']
            tp[category] += 1
            iou_sum[category] += inter / union
            gt_matched.add(g)
            pred_matched.add(p)
    crowd_by_category = {}
    for g, info in gt_segments.items():
        if g in gt_matched:
            continue
        if info['iscrowd']:
            crowd_by_category[info['category']] = g
            continue
        fn[info['category']] += 1
    for p, info in pred_segments.items():
        if p in pred_matched:
            continue
        inter = pairs.get((-1, p), 0)
        if info['category'] in crowd_by_category:
            inter += pairs.get((crowd_by_category[info['category']], p), 0)
        if inter / info['area'] > 0.5:
            continue
        fp[info['category']] += 1
    return tp, fp, fn, iou_sum


@pytest.mark.parametrize('seed', range(5))
def test_agrees_with_coco_reference_on_random_blocks(seed):
    rng = np.random.default_rng(seed)
    labels = small_label_set()
    # coarse random blocks so that many segment pairs overlap by more than half
    blocks_gt = rng.integers(0, 5, size=(6, 6))
    gt_class = np.where(blocks_gt == 4, VOID, blocks_gt)
    gt_inst = np.where(np.isin(gt_class, labels.thing_ids), rng.integers(0, 3, size=(6, 6)), 0)
    gt = np.kron(gt_class * DIV + gt_inst, np.ones((4, 4), dtype=np.int64))
    pred = gt.copy()
    flip = rng.random(pred.shape) < 0.25
    pred_class = rng.integers(0, 5, size=pred.shape)
    pred_class = np.where(pred_class == 4, VOID, pred_class)
    pred[flip] = (pred_class * DIV + rng.integers(0, 3, size=pred.shape))[flip]
    accumulator = PanopticQuality(labels, DIV)
    accumulator.update(pred, gt)
    tp, fp, fn, iou_sum = coco_reference_counts(pred, gt, labels, DIV)
    np.testing.assert_array_equal(accumulator.tp, tp)
    np.testing.assert_array_equal(accumulator.fp, fp)
    np.testing.assert_array_equal(accumulator.fn, fn)
    np.testing.assert_allclose(accumulator.iou_sum, iou_sum)
    assert sum(tp) > 0 and sum(fp) > 0
