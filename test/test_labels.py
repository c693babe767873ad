"""Label sets: the built-in sets, YAML loading and every malformed definition."""

import numpy as np
import pytest

from seg_perception.labels import (
    cityscapes,
    cityscapes_label_to_train_id_lut,
    LabelSet,
    LabelSetError,
    train_id_to_cityscapes_label_lut,
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


def test_quoted_false_in_yaml_is_refused(tmp_path):
    path = tmp_path / 'quoted.yaml'
    path.write_text('classes:\n  - {name: floor, color: [1, 2, 3], thing: "false"}\n')
    with pytest.raises(LabelSetError, match=r'quoted.yaml: class 0 .*"thing" must be true or '
                       r"false, got 'false' \(str\)"):
        LabelSet.from_yaml(str(path))


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
