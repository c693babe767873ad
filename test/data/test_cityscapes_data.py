"""Cityscapes-format reader, Panoptic-DeepLab targets and augmentation."""

import os
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest

from seg_perception.data.augment import augment, AugmentConfig, color_jitter, resize_nearest
from seg_perception.data.cityscapes import CityscapesDataset, DatasetError
from seg_perception.data.targets import panoptic_targets
from seg_perception.labels import cityscapes

HEIGHT, WIDTH = 32, 64
# Cityscapes label ids and the train ids they map to
ROAD_LABEL, SKY_LABEL, PERSON_LABEL, CAR_LABEL, STATIC_LABEL = 7, 23, 24, 26, 4
ROAD, SKY, PERSON, CAR = 0, 10, 11, 13


def frame_arrays(seed: int):
    """Image (RGB), labelIds and instanceIds of a small street: two cars, a crowd, void."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    label = np.full((HEIGHT, WIDTH), ROAD_LABEL, dtype=np.uint8)
    label[:8] = SKY_LABEL
    label[8:10, :] = STATIC_LABEL  # void in train ids
    label[12:20, 4:14] = CAR_LABEL
    label[14:26, 30:44] = CAR_LABEL
    label[20:30, 50:56] = PERSON_LABEL
    instance = label.astype(np.uint16)
    instance[12:20, 4:14] = CAR_LABEL * 1000 + 3
    instance[14:26, 30:44] = CAR_LABEL * 1000 + 0  # instance numbers start at 0 in Cityscapes
    # the person region has no instance id: a crowd
    return image, label, instance


def write_frame(root, split, city, name, image, label, instance):
    image_dir = os.path.join(root, 'leftImg8bit', split, city)
    label_dir = os.path.join(root, 'gtFine', split, city)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    paths = (os.path.join(image_dir, f'{name}_leftImg8bit.png'),
             os.path.join(label_dir, f'{name}_gtFine_labelIds.png'),
             os.path.join(label_dir, f'{name}_gtFine_instanceIds.png'))
    if image is not None:
        assert cv2.imwrite(paths[0], cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if label is not None:
        assert cv2.imwrite(paths[1], label)
    if instance is not None:
        assert cv2.imwrite(paths[2], instance)
    return paths


@pytest.fixture
def dataset_root(tmp_path):
    root = str(tmp_path / 'cityscapes')
    write_frame(root, 'train', 'aachen', 'aachen_000000_000019', *frame_arrays(0))
    write_frame(root, 'train', 'bonn', 'bonn_000001_000019', *frame_arrays(1))
    write_frame(root, 'val', 'lindau', 'lindau_000000_000019', *frame_arrays(2))
    return root


# ----------------------------------------------------------------------------- reader

def test_decodes_train_ids_instances_and_panoptic(dataset_root):
    dataset = CityscapesDataset(dataset_root, 'train')
    assert len(dataset) == 2 and dataset.skipped == []
    sample = dataset[0]
    image, _, _ = frame_arrays(0)
    assert sample.name == 'aachen_000000_000019'
    assert sample.image_path.endswith('aachen_000000_000019_leftImg8bit.png')
    np.testing.assert_array_equal(sample.image, image)  # RGB, not OpenCV's BGR
    assert sample.semantic.dtype == np.uint8 and sample.semantic.shape == (HEIGHT, WIDTH)
    assert sample.semantic[0, 0] == SKY and sample.semantic[31, 0] == ROAD
    assert sample.semantic[9, 0] == 255  # 'static' label id is void
    assert sample.semantic[15, 5] == CAR and sample.semantic[25, 52] == PERSON
    assert sample.instance.dtype == np.int32 and sample.panoptic.dtype == np.int32
    # raw ids 26000 and 26003 become per-frame instances 1 and 2 (in raw id order)
    assert set(np.unique(sample.instance)) == {0, 1, 2}
    assert np.all(sample.instance[14:26, 30:44] == 1)
    assert np.all(sample.instance[12:20, 4:14] == 2)
    assert np.all(sample.instance[20:30, 50:56] == 0)  # crowd: no instance
    assert sample.panoptic[15, 5] == CAR * 1000 + 2
    assert sample.panoptic[25, 52] == PERSON * 1000  # crowd thing, instance 0
    assert sample.panoptic[0, 0] == SKY * 1000
    assert sample.panoptic[9, 0] == 255 * 1000


def test_dataset_pickles_and_does_not_import_torch(dataset_root):
    dataset = CityscapesDataset(dataset_root, 'val')
    clone = pickle.loads(pickle.dumps(dataset))
    np.testing.assert_array_equal(clone[0].panoptic, dataset[0].panoptic)
    code = ('import sys; import seg_perception.data.cityscapes, seg_perception.data.targets, '
            'seg_perception.data.augment; assert "torch" not in sys.modules')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_torch_dataloader_with_a_worker(dataset_root):
    torch = pytest.importorskip('torch')
    dataset = CityscapesDataset(dataset_root, 'train')
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1,
                                         collate_fn=lambda samples: samples)
    (batch,) = list(loader)
    assert [s.name for s in batch] == [f.name for f in dataset.frames]


def test_missing_label_file(dataset_root):
    image, label, _ = frame_arrays(3)
    write_frame(dataset_root, 'train', 'aachen', 'aachen_000002_000019', image, label, None)
    with pytest.raises(DatasetError, match=r'aachen_000002_000019_leftImg8bit\.png: label file '
                       r'missing: .*aachen_000002_000019_gtFine_instanceIds\.png'):
        CityscapesDataset(dataset_root, 'train')


def test_missing_image_file(dataset_root):
    _, label, instance = frame_arrays(3)
    write_frame(dataset_root, 'train', 'bonn', 'bonn_000009_000019', None, label, instance)
    with pytest.raises(DatasetError, match=r'bonn_000009_000019_gtFine_\w+\.png: image file '
                       r'missing: .*bonn_000009_000019_leftImg8bit\.png'):
        CityscapesDataset(dataset_root, 'train')


def test_label_of_another_size(dataset_root):
    image, label, instance = frame_arrays(3)
    write_frame(dataset_root, 'train', 'bonn', 'bonn_000009_000019', image,
                label[:, :60], instance)
    with pytest.raises(DatasetError, match=r'bonn_000009_000019_gtFine_labelIds\.png: label is '
                       r'60x32 but its image .* is 64x32'):
        CityscapesDataset(dataset_root, 'train')


def test_label_id_outside_label_set(dataset_root):
    image, label, instance = frame_arrays(3)
    label[0, 0] = 40
    label[1, 1] = 77
    write_frame(dataset_root, 'train', 'bonn', 'bonn_000009_000019', image, label, instance)
    dataset = CityscapesDataset(dataset_root, 'train')  # content is checked on loading
    message = (r'bonn_000009_000019_gtFine_labelIds\.png: label id\(s\) 40, 77 are not in '
               r"label set 'cityscapes'")
    with pytest.raises(DatasetError, match=message):
        dataset[2]
    with pytest.raises(DatasetError, match=message):
        dataset.verify()


def test_corrupt_png(dataset_root):
    paths = write_frame(dataset_root, 'train', 'bonn', 'bonn_000009_000019', *frame_arrays(3))
    with open(paths[0], 'rb') as stream:
        data = stream.read()
    with open(paths[0], 'wb') as stream:
        stream.write(data[:60])  # header intact, pixel data cut off
    dataset = CityscapesDataset(dataset_root, 'train')
    with pytest.raises(DatasetError, match=r'bonn_000009_000019_leftImg8bit\.png: cannot decode'):
        dataset[2]
    with open(paths[1], 'wb') as stream:
        stream.write(b'not a png at all')
    with pytest.raises(DatasetError, match=r'bonn_000009_000019_gtFine_labelIds\.png: not a PNG'):
        CityscapesDataset(dataset_root, 'train')


def test_colour_label_png_is_rejected(dataset_root):
    image, label, instance = frame_arrays(3)
    write_frame(dataset_root, 'train', 'bonn', 'bonn_000009_000019', image,
                np.dstack([label] * 3), instance)
    with pytest.raises(DatasetError, match=r'labelIds\.png: label must be a single-channel'):
        CityscapesDataset(dataset_root, 'train')


def test_empty_or_missing_folders(tmp_path, dataset_root):
    empty = tmp_path / 'empty'
    (empty / 'leftImg8bit' / 'train' / 'city').mkdir(parents=True)
    (empty / 'gtFine' / 'train').mkdir(parents=True)
    with pytest.raises(DatasetError, match=r'leftImg8bit/train: no \*_leftImg8bit\.png files'):
        CityscapesDataset(str(empty), 'train')
    with pytest.raises(DatasetError, match=r'test does not exist \(splits found in .*: train, '
                       r'val\)'):
        CityscapesDataset(dataset_root, 'test')
    with pytest.raises(DatasetError, match='nowhere does not exist'):
        CityscapesDataset(str(tmp_path / 'nowhere'), 'train')


def test_skip_bad_lists_every_bad_frame(dataset_root):
    image, label, instance = frame_arrays(3)
    write_frame(dataset_root, 'train', 'x', 'x_1', image, label, None)  # no instanceIds
    write_frame(dataset_root, 'train', 'x', 'x_2', None, label, instance)  # no image
    write_frame(dataset_root, 'train', 'x', 'x_3', image, label[:16], instance[:16])
    bad_ids = label.copy()
    bad_ids[5, 5] = 200
    write_frame(dataset_root, 'train', 'x', 'x_4', image, bad_ids, instance)
    with pytest.raises(DatasetError):
        CityscapesDataset(dataset_root, 'train')
    dataset = CityscapesDataset(dataset_root, 'train', skip_bad=True)
    assert [f.name for f in dataset.frames] == ['aachen_000000_000019', 'bonn_000001_000019']
    reasons = {os.path.basename(path): reason for path, reason in dataset.skipped}
    assert len(dataset.skipped) == 4
    assert 'label file missing' in reasons['x_1_leftImg8bit.png']
    assert 'x_2_gtFine_labelIds.png: image file missing' in reasons['x_2_gtFine_instanceIds.png']
    assert 'label is 64x16' in reasons['x_3_leftImg8bit.png']
    assert 'label id(s) 200' in reasons['x_4_leftImg8bit.png']


# ----------------------------------------------------------------------------- targets

def two_instance_scene():
    semantic = np.zeros((40, 60), dtype=np.uint8)  # road
    semantic[0:4] = 255  # void strip
    instance = np.zeros((40, 60), dtype=np.int32)
    semantic[10:20, 10:20] = CAR  # 100 px, centre (14.5, 14.5)
    instance[10:20, 10:20] = 1
    semantic[20:36, 30:56] = PERSON  # 416 px, centre (27.5, 42.5)
    instance[20:36, 30:56] = 2
    semantic[30:34, 0:4] = PERSON  # crowd
    return semantic, instance


def test_targets_on_two_instances():
    semantic, instance = two_instance_scene()
    targets = panoptic_targets(semantic, instance, cityscapes(), sigma=2.0,
                               small_instance_area=200, small_instance_weight=3.0)
    assert targets.center.shape == (1, 40, 60) and targets.center.dtype == np.float32
    assert targets.offset.shape == (2, 40, 60) and targets.offset.dtype == np.float32
    np.testing.assert_array_equal(targets.semantic, semantic.astype(np.int64))
    # Gaussian peaks of 1 at the rounded centres of mass (14.5 rounds to 14, 27.5 to 28)
    peaks = np.argwhere(targets.center[0] == 1.0)
    assert sorted(map(tuple, peaks)) == [(14, 14), (28, 42)]
    assert targets.center[0, 14, 16] == pytest.approx(np.exp(-4 / 8))
    assert targets.center[0, 0, 59] < 1e-6
    # every instance pixel plus its offset lands on its centre of mass
    rows, cols = np.indices(semantic.shape)
    for instance_id, centre in ((1, (14.5, 14.5)), (2, (27.5, 42.5))):
        mask = instance == instance_id
        np.testing.assert_allclose(rows[mask] + targets.offset[0][mask], centre[0], atol=1e-5)
        np.testing.assert_allclose(cols[mask] + targets.offset[1][mask], centre[1], atol=1e-5)
    assert targets.offset[0, 10, 10] == pytest.approx(4.5)  # (dy, dx) order
    assert np.all(targets.offset[:, instance == 0] == 0)
    # weights
    np.testing.assert_array_equal(targets.offset_weights, (instance > 0).astype(np.float32))
    assert np.all(targets.semantic_weights[10:20, 10:20] == 3.0)  # small car
    assert np.all(targets.semantic_weights[20:36, 30:56] == 1.0)  # large person
    assert np.all(targets.semantic_weights[0:4] == 0.0)  # void
    assert np.all(targets.center_weights[0:4] == 0.0)
    assert np.all(targets.center_weights[30:34, 0:4] == 0.0)  # crowd
    assert targets.center_weights[39, 59] == 1.0 and targets.center_weights[15, 15] == 1.0


def test_targets_instance_on_stuff_is_ignored_and_bad_input():
    semantic, instance = two_instance_scene()
    instance[38, 0:5] = 7  # on road: not a thing, no centre
    targets = panoptic_targets(semantic, instance, cityscapes(), sigma=2.0)
    assert np.argwhere(targets.center[0] == 1.0).shape[0] == 2
    assert targets.offset_weights[38, 0] == 0
    with pytest.raises(ValueError, match='semantic map holds 19'):
        panoptic_targets(np.full((4, 4), 19), np.zeros((4, 4)), cityscapes())
    with pytest.raises(ValueError, match='must be equal'):
        panoptic_targets(semantic, instance[:5], cityscapes())


# ----------------------------------------------------------------------------- augmentation

def scene_from_labels(rng):
    """An image whose colour is a function of the label, to check they stay aligned."""
    semantic = np.kron(rng.integers(0, 19, size=(6, 10)), np.ones((8, 8), dtype=np.int64))
    semantic = semantic.astype(np.uint8)
    instance = np.where(semantic >= 11, semantic.astype(np.int32) + 100, 0).astype(np.int32)
    palette = cityscapes().palette
    return palette[semantic].copy(), semantic, instance


def test_augment_keeps_image_and_labels_aligned_and_is_deterministic():
    image, semantic, instance = scene_from_labels(np.random.default_rng(0))
    config = AugmentConfig(crop_height=40, crop_width=56, min_scale=0.75, max_scale=1.75,
                           brightness=0, contrast=0, saturation=0, hue=0)
    palette = cityscapes().palette.astype(np.int32)
    for seed in range(6):
        out_image, out_semantic, out_instance = augment(image, semantic, instance,
                                                        np.random.default_rng(seed), config)
        assert out_image.shape == (40, 56, 3) and out_semantic.shape == (40, 56)
        assert out_semantic.dtype == np.uint8 and out_instance.dtype == np.int32
        valid = out_semantic != 255
        expected = palette[out_semantic]
        # bilinear image vs nearest labels: away from edges colours agree exactly
        interior = valid & (np.abs(out_image.astype(np.int32) - expected).max(axis=2) == 0)
        assert interior.sum() > 0.7 * valid.sum()
        np.testing.assert_array_equal(out_image[~valid], 0)  # padding
        np.testing.assert_array_equal(out_instance[~valid], 0)
        thing = valid & (out_semantic >= 11)
        np.testing.assert_array_equal(out_instance[thing], out_semantic[thing].astype(int) + 100)
        again = augment(image, semantic, instance, np.random.default_rng(seed), config)
        for first, second in zip((out_image, out_semantic, out_instance), again):
            np.testing.assert_array_equal(first, second)
    other = augment(image, semantic, instance, np.random.default_rng(99), config)
    assert not np.array_equal(other[1], out_semantic)


def test_flip_only_mirrors_all_maps():
    image, semantic, instance = scene_from_labels(np.random.default_rng(1))
    config = AugmentConfig(crop_height=48, crop_width=80, min_scale=1, max_scale=1,
                           flip_probability=1.0, brightness=0, contrast=0, saturation=0,
                           hue=0)
    out_image, out_semantic, out_instance = augment(image, semantic, instance,
                                                    np.random.default_rng(0), config)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_semantic, semantic[:, ::-1])
    np.testing.assert_array_equal(out_instance, instance[:, ::-1])


def test_resize_nearest_matches_pixel_centres():
    label = np.arange(4, dtype=np.int32).reshape(1, 4)
    np.testing.assert_array_equal(resize_nearest(label, 1, 8), [[0, 0, 1, 1, 2, 2, 3, 3]])
    np.testing.assert_array_equal(resize_nearest(label, 1, 2), [[1, 3]])


def test_color_jitter_changes_colour_only_within_range():
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, size=(16, 16, 3), dtype=np.uint8)
    jittered = color_jitter(image, np.random.default_rng(5), 0.2, 0.2, 0.2, 0.05)
    assert jittered.shape == image.shape and jittered.dtype == np.uint8
    assert not np.array_equal(jittered, image)
    np.testing.assert_array_equal(
        jittered, color_jitter(image, np.random.default_rng(5), 0.2, 0.2, 0.2, 0.05))
    unchanged = color_jitter(image, np.random.default_rng(5), 0, 0, 0, 0)
    np.testing.assert_array_equal(unchanged, image)


def test_class_balanced_crops_find_a_rare_class():
    semantic = np.zeros((100, 200), dtype=np.uint8)
    semantic[95:98, 190:193] = 18  # a 3x3 bicycle in a corner of a road
    semantic[:5, :] = 255  # void is never the class a crop is placed over
    instance = np.where(semantic == 18, 7, 0).astype(np.int32)
    image = cityscapes().palette[np.where(semantic == 255, 0, semantic)].copy()

    def crops_with_bicycle(probability):
        config = AugmentConfig(crop_height=20, crop_width=20, min_scale=1, max_scale=1,
                               flip_probability=0, brightness=0, contrast=0, saturation=0,
                               hue=0, class_balanced_crop=probability)
        found = 0
        for seed in range(200):
            out_image, out_semantic, out_instance = augment(
                image, semantic, instance, np.random.default_rng(seed), config)
            bicycle = out_semantic == 18
            np.testing.assert_array_equal(out_instance[bicycle], 7)
            np.testing.assert_array_equal(out_image[bicycle],
                                          np.broadcast_to(cityscapes().palette[18], (
                                              int(bicycle.sum()), 3)))
            found += bool(bicycle.any())
        return found

    # Uniform windows hit the corner ~1 % of the time; class-uniform ones half the time
    # (two classes present: road and bicycle).
    assert crops_with_bicycle(0.0) <= 10
    assert 70 <= crops_with_bicycle(1.0) <= 130


def test_augment_config_rejects_bad_values():
    with pytest.raises(ValueError, match='class_balanced_crop'):
        AugmentConfig(crop_height=8, crop_width=8, class_balanced_crop=1.5)
    with pytest.raises(ValueError, match='scale range'):
        AugmentConfig(crop_height=8, crop_width=8, min_scale=2, max_scale=1)
    with pytest.raises(ValueError, match='crop size'):
        AugmentConfig(crop_height=0, crop_width=8)
    with pytest.raises(ValueError, match='label map'):
        augment(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8),
                np.zeros((4, 4), np.int32), np.random.default_rng(0),
                AugmentConfig(crop_height=4, crop_width=4))
