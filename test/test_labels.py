"""Label sets: the built-in sets, YAML loading and every malformed definition."""

import numpy as np
import pytest

from seg_perception.labels import (
    ade20k,
    camvid,
    cityscapes,
    cityscapes_label_to_train_id_lut,
    LABEL_SET_NAMES,
    LabelSet,
    LabelSetError,
    load_label_set,
    named_label_set,
    train_id_to_cityscapes_label_lut,
    voc,
)

ONE = {'name': 'a', 'color': [1, 2, 3]}


def test_cityscapes_default_has_19_classes_and_8_things():
    labels = cityscapes()
    assert labels.num_classes == 19
    assert labels.thing_ids == tuple(range(11, 19))
    assert labels.names[0] == 'road' and labels.names[13] == 'car'
    assert labels.void_id == 255
    assert len(labels.stuff_ids) == 11


def test_label_id_luts_round_trip():
    to_train = cityscapes_label_to_train_id_lut()
    to_label = train_id_to_cityscapes_label_lut()
    assert to_train[7] == 0 and to_train[26] == 13 and to_train[0] == 255
    for train_id in range(19):
        assert to_train[to_label[train_id]] == train_id


def test_colorize_maps_ids_and_void_to_black():
    labels = cityscapes()
    ids = np.array([[0, 13], [255, 10]], dtype=np.uint8)
    rgb = labels.colorize(ids)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (128, 64, 128)
    assert tuple(rgb[0, 1]) == (0, 0, 142)
    assert tuple(rgb[1, 0]) == (0, 0, 0)


def test_yaml_round_trip(tmp_path):
    import yaml
    path = tmp_path / 'robot.yaml'
    path.write_text(yaml.safe_dump({
        'name': 'robot',
        'classes': [{'name': 'floor', 'color': [1, 2, 3]},
                    {'name': 'person', 'color': [4, 5, 6], 'thing': True}]}))
    labels = LabelSet.from_yaml(str(path))
    assert labels.names == ('floor', 'person') and labels.thing_ids == (1,)
    assert LabelSet.from_dict(labels.to_dict()) == labels


@pytest.mark.parametrize('data, message', [
    ({'classes': []}, 'no classes'),
    ({'classes': [{'name': 'a'}]}, 'needs "name" and "color"'),
    ({'classes': [{'name': 'a', 'color': [1, 2]}]}, 'colour must be'),
    ({'classes': [{'name': 'a', 'color': [1, 2, 300]}]}, r'class 0 \(.a.\): "color".*0\.\.255'),
    ({'classes': [{'name': 'a', 'color': [1, 2, 3]}, {'name': 'a', 'color': [1, 2, 3]}]},
     'not unique: class 1 repeats'),
    ({'void_id': 0, 'classes': [{'name': 'a', 'color': [1, 2, 3]}]}, 'collides'),
    ({'nothing': 1}, 'expected a mapping'),
])
def test_malformed_label_sets_are_refused(data, message):
    with pytest.raises(LabelSetError, match=message):
        LabelSet.from_dict(data, source='bad.yaml')


def test_missing_and_corrupt_yaml_files(tmp_path):
    with pytest.raises(LabelSetError, match='cannot read'):
        LabelSet.from_yaml(str(tmp_path / 'missing.yaml'))
    bad = tmp_path / 'bad.yaml'
    bad.write_text('classes: [unclosed')
    with pytest.raises(LabelSetError, match='not valid YAML'):
        LabelSet.from_yaml(str(bad))


@pytest.mark.parametrize('name, count, things', [
    ('cityscapes', 19, 8), ('voc', 21, 20), ('camvid', 11, 3), ('ade20k', 150, 100)])
def test_every_named_set_loads(name, count, things):
    labels = named_label_set(name)
    assert name in LABEL_SET_NAMES and labels.name == name
    assert labels.num_classes == count and len(labels.thing_ids) == things
    assert labels.void_id == 255 and labels.palette.shape == (256, 3)
    assert labels.palette.dtype == np.uint8
    assert tuple(labels.palette[count - 1]) == labels.colors[-1]
    assert not labels.palette[count:].any()
    assert load_label_set(name) == labels == named_label_set(name.upper())
    assert LabelSet.from_dict(labels.to_dict()) == labels


def test_voc_follows_torchvision_order_and_the_voc_colour_map():
    labels = voc()
    assert labels.names[0] == 'background' and labels.names[15] == 'person'
    assert labels.names[-1] == 'tvmonitor' and labels.stuff_ids == (0,)
    # The VOC devkit's colour map (bits of the index spread over r, g, b from bit 7 down).
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0),
                4: (0, 0, 128), 7: (128, 128, 128), 8: (64, 0, 0), 15: (192, 128, 128),
                16: (0, 64, 0), 19: (128, 192, 0), 20: (0, 64, 128)}
    for train_id, color in expected.items():
        assert labels.colors[train_id] == color, labels.names[train_id]


def test_camvid_matches_segnet_and_pytorch_enet():
    labels = camvid()
    assert labels.names == ('sky', 'building', 'pole', 'road', 'pavement', 'tree',
                            'sign_symbol', 'fence', 'car', 'pedestrian', 'bicyclist')
    assert [labels.names[i] for i in labels.thing_ids] == ['car', 'pedestrian', 'bicyclist']
    assert labels.colors[3] == (128, 64, 128) and labels.colors[4] == (60, 40, 222)


def test_ade20k_order_palette_and_things():
    labels = ade20k()
    assert labels.names[:4] == ('wall', 'building', 'sky', 'floor')
    assert labels.names[12] == 'person' and labels.names[-1] == 'flag'
    assert labels.colors[0] == (120, 120, 120) and labels.colors[149] == (92, 0, 255)
    assert labels.colors[12] == (150, 5, 61)
    things = {labels.names[i] for i in labels.thing_ids}
    assert {'person', 'car', 'chair', 'bicycle', 'bottle', 'bus'} <= things
    assert not {'wall', 'sky', 'floor', 'road', 'grass', 'water'} & things


def test_unknown_names_list_the_valid_ones(tmp_path):
    with pytest.raises(LabelSetError, match='cityscapes, voc, camvid, ade20k'):
        named_label_set('coco')
    with pytest.raises(LabelSetError, match='or the path of a YAML'):
        load_label_set('coco')
    with pytest.raises(LabelSetError, match='cannot read label set .*missing.yaml'):
        load_label_set(str(tmp_path / 'missing.yaml'))


def test_load_label_set_reads_a_yaml_file(tmp_path):
    import yaml
    path = tmp_path / 'robot.yaml'
    path.write_text(yaml.safe_dump({'name': 'robot', 'void_id': 200, 'classes': [
        {'name': 'floor', 'color': [1, 2, 3], 'thing': False},
        {'name': 'person', 'color': [4, 5, 6], 'thing': True}]}))
    labels = load_label_set(str(path))
    assert labels.name == 'robot' and labels.void_id == 200 and labels.thing_ids == (1,)
    path.write_text(yaml.safe_dump(labels.to_dict()))
    assert load_label_set(str(path)) == labels


def test_quoted_false_in_yaml_is_refused(tmp_path):
    path = tmp_path / 'quoted.yaml'
    path.write_text('classes:\n  - {name: floor, color: [1, 2, 3], thing: "false"}\n')
    with pytest.raises(LabelSetError, match=r'quoted.yaml: class 0 .*"thing" must be true or '
                       r"false, got 'false' \(str\)"):
        load_label_set(str(path))


@pytest.mark.parametrize('data, message', [
    ({'classes': [{**ONE, 'thing': 'false'}]}, r'class 0 .*"thing" must be true or false'),
    ({'classes': [{**ONE, 'thing': 1}]}, r'"thing" must be true or false, got 1 \(int\)'),
    ({'classes': [ONE, {'name': 'b', 'color': [1, 2.5, 3]}]}, r'class 1 .*"color"'),
    ({'classes': [{'name': 'a', 'color': [1, 2, -1]}]}, r'class 0 .*"color"'),
    ({'classes': [{'name': 'a', 'color': [True, 2, 3]}]}, r'class 0 .*"color"'),
    ({'classes': [{'name': 'a', 'color': '1 2 3'}]}, r'class 0 .*colour must be'),
    ({'classes': [ONE, {'name': '', 'color': [1, 2, 3]}]}, r'class 1: "name" must be a non'),
    ({'classes': [{'name': 7, 'color': [1, 2, 3]}]}, r'class 0: "name" must be a non-empty'),
    ({'classes': [{**ONE, 'things': True}]}, r"class 0: unknown key 'things'"),
    ({'void_id': 300, 'classes': [ONE]}, r'"void_id" must be an integer in 0\.\.255, got 300'),
    ({'void_id': -1, 'classes': [ONE]}, r'"void_id" must be an integer in 0\.\.255'),
    ({'void_id': '255', 'classes': [ONE]}, r'"void_id" must be an integer'),
    ({'void_id': 1, 'classes': [ONE, ONE | {'name': 'b'}]}, 'void id 1 collides'),
    ({'name': '', 'classes': [ONE]}, '"name" must be a non-empty string'),
    ({'void': 0, 'classes': [ONE]}, "unknown key 'void'"),
])
def test_strict_types_are_enforced(data, message):
    with pytest.raises(LabelSetError, match=message) as caught:
        LabelSet.from_dict(data, source='bad.yaml')
    assert str(caught.value).startswith('bad.yaml: ') and '\n' not in str(caught.value)


def test_direct_construction_checks_void_id_and_colours():
    with pytest.raises(LabelSetError, match='void id 256 is not an integer in 0..255'):
        LabelSet(name='x', names=('a',), colors=((1, 2, 3),), thing_ids=(), void_id=256)
    with pytest.raises(LabelSetError, match='class 0 colour'):
        LabelSet(name='x', names=('a',), colors=((1.5, 2, 3),), thing_ids=())
