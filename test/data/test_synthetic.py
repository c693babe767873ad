"""Synthetic driving scenes, the Cityscapes writer and ``seg-perception synth``."""

import glob
import os

import cv2
import numpy as np
import pytest

from seg_perception.cli import main as cli_main
from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.cityscapes_writer import (
    cityscapes_instance_ids,
    frame_paths,
    write_cityscapes_frame,
)
from seg_perception.data.synthetic.generator import SceneGenerator, SyntheticFrame, thing_train_ids
from seg_perception.data.synthetic.layout import TrainId
from seg_perception.labels import (
    cityscapes,
    cityscapes_label_to_train_id_lut,
    train_id_to_cityscapes_label_lut,
)

WIDTH, HEIGHT = 320, 160
BATCH = 24


@pytest.fixture(scope='module')
def batch():
    generator = SceneGenerator(WIDTH, HEIGHT, seed=7)
    return [generator.generate(i) for i in range(BATCH)]


def test_train_ids_match_the_cityscapes_label_set():
    names = cityscapes().names
    for attribute, train_id in vars(TrainId).items():
        if attribute.isupper():
            assert names[train_id] == attribute.lower().replace('_', ' ')
    assert set(thing_train_ids()) == set(cityscapes().thing_ids)


def test_frame_arrays_have_the_documented_shapes_and_types(batch):
    frame = batch[0]
    assert frame.image.shape == (HEIGHT, WIDTH, 3) and frame.image.dtype == np.uint8
    assert frame.semantic.shape == (HEIGHT, WIDTH) and frame.semantic.dtype == np.uint8
    assert frame.instance.shape == (HEIGHT, WIDTH) and frame.instance.dtype == np.int32
    panoptic = frame.panoptic
    assert panoptic.dtype == np.int32
    np.testing.assert_array_equal(panoptic // 1000, frame.semantic)
    np.testing.assert_array_equal(panoptic % 1000, frame.instance)


def test_same_seed_and_index_give_identical_frames_in_any_order():
    first = SceneGenerator(WIDTH, HEIGHT, seed=3)
    second = SceneGenerator(WIDTH, HEIGHT, seed=3)
    a = first.generate(5)
    second.generate(9)  # call order must not matter
    b = second.generate(5)
    for name in ('image', 'semantic', 'instance'):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.instances == b.instances
    other_seed = SceneGenerator(WIDTH, HEIGHT, seed=4).generate(5)
    other_index = first.generate(6)
    assert not np.array_equal(a.semantic, other_seed.semantic)
    assert not np.array_equal(a.image, other_index.image)


def test_every_class_appears_across_a_batch(batch):
    seen = set()
    for frame in batch:
        seen.update(int(v) for v in np.unique(frame.semantic))
    missing = [cityscapes().names[i] for i in range(19) if i not in seen]
    assert not missing, f'classes never drawn in {BATCH} frames: {missing}'


def test_several_things_per_frame(batch):
    counts = [len(frame.instances) for frame in batch]
    assert np.mean(counts) >= 5, counts
    assert min(counts) >= 1, counts


def test_instances_are_consistent_with_semantic(batch):
    things = np.asarray(cityscapes().thing_ids)
    for frame in batch:
        is_thing = np.isin(frame.semantic, things)
        np.testing.assert_array_equal(frame.instance > 0, is_thing)
        ids = np.unique(frame.instance[frame.instance > 0])
        np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
        assert [info.id for info in frame.instances] == list(ids)
        for info in frame.instances:
            mask = frame.instance == info.id
            assert np.unique(frame.semantic[mask]).tolist() == [info.train_id]
            assert mask.sum() == info.area > 0
            rows, cols = np.nonzero(mask)
            assert info.bbox == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_void_only_on_the_ego_hood_at_the_bottom(batch):
    hood_frames = 0
    for frame in batch:
        void = frame.semantic == 255
        if void.any():
            hood_frames += 1
            rows = np.nonzero(void)[0]
            assert rows.min() > HEIGHT * 0.75
            assert (frame.instance[void] == 0).all()
    assert 0 < hood_frames < BATCH


def test_objects_lower_in_the_image_are_larger(batch):
    """Things stand on the ground plane: nearer ones reach lower and are taller."""
    bottoms, heights = [], []
    for frame in batch:
        for info in frame.instances:
            if info.train_id in (TrainId.CAR, TrainId.PERSON):
                x0, y0, x1, y1 = info.bbox
                bottoms.append(y1)
                heights.append(y1 - y0)
    bottoms, heights = np.asarray(bottoms), np.asarray(heights)
    assert len(bottoms) > 50
    assert np.corrcoef(bottoms, heights)[0, 1] > 0.4
    split = np.median(bottoms)
    assert heights[bottoms > split].mean() > 2 * heights[bottoms <= split].mean()


def test_images_are_not_flat(batch):
    frame = batch[0]
    road = frame.semantic == TrainId.ROAD
    assert frame.image[road].std() > 2.0  # texture and noise, not a flat fill
    assert frame.image.std() > 20.0


def test_bad_generator_arguments_are_rejected():
    with pytest.raises(ValueError, match='width'):
        SceneGenerator(width=4)
    with pytest.raises(TypeError, match='height'):
        SceneGenerator(height=100.5)
    with pytest.raises(ValueError, match='seed'):
        SceneGenerator(seed=-1)
    with pytest.raises(ValueError, match='index'):
        SceneGenerator(64, 32).generate(-3)


def test_writer_round_trips_labels_and_instances(tmp_path, batch):
    frame = max(batch, key=lambda f: len(f.instances))
    paths = write_cityscapes_frame(str(tmp_path), 'val', 'testville', '000007_000042', frame)
    assert paths.image.endswith(os.path.join('leftImg8bit', 'val', 'testville',
                                             'testville_000007_000042_leftImg8bit.png'))
    image = cv2.cvtColor(cv2.imread(paths.image, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(image, frame.image)
    label_ids = cv2.imread(paths.label_ids, cv2.IMREAD_UNCHANGED)
    assert label_ids.dtype == np.uint8 and label_ids.ndim == 2
    np.testing.assert_array_equal(cityscapes_label_to_train_id_lut()[label_ids], frame.semantic)
    train_ids = cv2.imread(paths.label_train_ids, cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(train_ids, frame.semantic)

    raw = cv2.imread(paths.instance_ids, cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    is_instance = raw >= 1000
    np.testing.assert_array_equal(is_instance, frame.instance > 0)
    np.testing.assert_array_equal(np.where(is_instance, raw // 1000, raw), label_ids)
    # Each decoded Cityscapes id is exactly one of the frame's instances.
    for info in frame.instances:
        values = np.unique(raw[frame.instance == info.id])
        assert len(values) == 1
        assert values[0] // 1000 == train_id_to_cityscapes_label_lut()[info.train_id]
    assert len(np.unique(raw[is_instance])) == len(frame.instances)

    color = cv2.imread(paths.color, cv2.IMREAD_UNCHANGED)
    assert color.shape == (HEIGHT, WIDTH, 4)
    np.testing.assert_array_equal(color[:, :, 2::-1], cityscapes().colorize(frame.semantic))

    sample = CityscapesDataset(str(tmp_path), 'val')[0]
    np.testing.assert_array_equal(sample.semantic, frame.semantic)
    # The reader numbers instances its own way; the segments must be the same.
    pairs = np.unique(np.stack([sample.instance.ravel(), frame.instance.ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def test_cityscapes_instance_ids_count_per_class_from_zero():
    semantic = np.array([[TrainId.CAR, TrainId.CAR, TrainId.PERSON, TrainId.ROAD, 255]],
                        dtype=np.uint8)
    instance = np.array([[2, 5, 1, 0, 0]], dtype=np.int32)
    np.testing.assert_array_equal(cityscapes_instance_ids(semantic, instance),
                                  [[26000, 26001, 24000, 7, 0]])
    with pytest.raises(ValueError, match='exactly one thing class'):
        cityscapes_instance_ids(semantic, np.array([[1, 1, 1, 0, 0]], dtype=np.int32))


def test_writer_rejects_bad_names_and_arrays(tmp_path, batch):
    with pytest.raises(ValueError, match='split'):
        frame_paths(str(tmp_path), 'training', 'x', '000000_000000')
    with pytest.raises(ValueError, match='city'):
        frame_paths(str(tmp_path), 'train', 'new_york', '000000_000000')
    with pytest.raises(ValueError, match='frame name'):
        frame_paths(str(tmp_path), 'train', 'x', '0_1')
    frame = batch[0]
    bad = SyntheticFrame(image=frame.image, semantic=np.full_like(frame.semantic, 40),
                         instance=frame.instance)
    with pytest.raises(ValueError, match='outside the Cityscapes set'):
        write_cityscapes_frame(str(tmp_path), 'train', 'x', '000000_000000', bad)
    assert not glob.glob(str(tmp_path / '**' / '*.png'), recursive=True)


def test_synth_command_writes_a_readable_dataset(tmp_path, capsys):
    out = str(tmp_path / 'data')
    status = cli_main(['synth', '--out', out, '--count', '3', '--seed', '12', '--size', '96x48',
                       '--split', 'val', '--city', 'demo'])
    assert status == 0
    captured = capsys.readouterr()
    assert '3/3 frames' in captured.err
    names = sorted(os.path.basename(p) for p in glob.glob(
        os.path.join(out, 'leftImg8bit', 'val', 'demo', '*.png')))
    assert names == [f'demo_000012_00000{i}_leftImg8bit.png' for i in range(3)]
    dataset = CityscapesDataset(out, 'val')
    assert len(dataset) == 3
    expected = SceneGenerator(96, 48, seed=12).generate(2)
    np.testing.assert_array_equal(dataset[2].semantic, expected.semantic)
    np.testing.assert_array_equal(dataset[2].image, expected.image)


@pytest.mark.parametrize('argv, message', [
    (['--size', '1024'], 'WIDTHxHEIGHT'),
    (['--size', '8x8'], 'outside'),
    (['--count', '0'], '--count'),
    (['--seed', '-2'], '--seed'),
    (['--city', 'Big_City'], 'city'),
])
def test_synth_command_rejects_bad_arguments(tmp_path, capsys, argv, message):
    base = {'--out': str(tmp_path), '--count': '1'}
    args = ['synth']
    for key, value in base.items():
        if key not in argv:
            args += [key, value]
    status = cli_main(args + argv)
    assert status == 2
    assert message in capsys.readouterr().err
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------- the canvas

def _square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def test_canvas_label_map_carries_class_instance_and_shadow():
    """One 16-bit fill per labelled polygon: class, instance and the end of a cast shadow."""
    from seg_perception.data.synthetic.camera import Camera
    from seg_perception.data.synthetic.canvas import Canvas, semantic_from_codes
    camera = Camera(width=64, height=32, focal=60.0, cx=32.0, cy=16.0, mount_height=1.5,
                    lateral=0.0, pitch=0.0, yaw=0.0)
    canvas = Canvas(camera, haze_color=(200, 200, 200), visibility=300.0)
    canvas.fill_pixels([_square(0, 16, 64, 32)], (90, 90, 90), TrainId.ROAD)
    # A shadow over the whole ground (world quad in front of the camera).
    canvas.shadow_world([np.array([[-50.0, 0.0, 0.6], [50.0, 0.0, 0.6], [50.0, 0.0, 80.0],
                                   [-50.0, 0.0, 80.0]])], 0.5)
    canvas.fill_pixels([_square(4, 18, 12, 26)], (20, 30, 200), TrainId.CAR, instance=3)
    canvas.label_polygon(_square(40, 18, 48, 26), TrainId.FENCE)  # see-through: still shaded
    canvas.fill_pixels([_square(50, 18, 56, 26)], (0, 200, 0), TrainId.WALL)  # ends it
    canvas.fill_pixels([_square(6, 20, 9, 24)], (255, 0, 0))  # image only
    codes = canvas.texture_codes()
    semantic = semantic_from_codes(codes)
    assert semantic[0, 0] == 255 and semantic[30, 30] == TrainId.ROAD
    assert semantic[22, 8] == TrainId.CAR and semantic[22, 44] == TrainId.FENCE
    assert semantic[22, 52] == TrainId.WALL
    shaded = codes != semantic
    assert shaded[30, 30] and shaded[22, 44]  # road and the fence over it stay in shadow
    assert not shaded[22, 8] and not shaded[22, 52] and not shaded[0, 0]
    ids, boxes, areas = canvas.measure_instances()
    # OpenCV's rasteriser includes both ends: columns 4..12, rows 18..26.
    assert ids == [3] and boxes == [(4, 18, 13, 27)] and areas == [81]
    instance = canvas.instance_map(ids)
    assert instance.dtype == np.int32 and set(np.unique(instance)) == {0, 1}
    assert int((instance == 1).sum()) == 81 and (semantic[instance == 1] == TrainId.CAR).all()
    np.testing.assert_allclose(canvas.image[22, 7], (255, 0, 0))  # no label change
    with pytest.raises(ValueError, match='at most 255 things'):
        canvas.fill_pixels([_square(0, 0, 4, 4)], (1, 1, 1), TrainId.PERSON, instance=256)
    with pytest.raises(ValueError, match='drawn as class'):
        canvas.fill_pixels([_square(0, 0, 4, 4)], (1, 1, 1), TrainId.PERSON, instance=3)
    with pytest.raises(RuntimeError, match='before drawing things'):
        canvas.shadow_world([], 0.5)
