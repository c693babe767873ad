"""Label sets: the Cityscapes default, YAML loading and every malformed definition."""

import numpy as np
import pytest

from seg_perception.labels import (
    cityscapes,
    cityscapes_label_to_train_id_lut,
    LabelSet,
    LabelSetError,
    train_id_to_cityscapes_label_lut,
)


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
    ({'classes': [{'name': 'a', 'color': [1, 2, 300]}]}, 'is not three values'),
    ({'classes': [{'name': 'a', 'color': [1, 2, 3]}, {'name': 'a', 'color': [1, 2, 3]}]},
     'not unique'),
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
