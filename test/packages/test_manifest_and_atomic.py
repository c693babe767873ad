"""Model manifest round trips and failures; atomic writes leave no half file."""

import os

import pytest

from seg_perception.manifest import ManifestError, ModelManifest, PostprocessSettings
from seg_perception.packages.atomic import atomic_open, atomic_write_text


def make_manifest(**overrides):
    values = dict(name='enet_panoptic', architecture='enet', task='panoptic',
                  input_height=512, input_width=1024)
    values.update(overrides)
    return ModelManifest(**values)


def test_round_trip(tmp_path):
    manifest = make_manifest(postprocess=PostprocessSettings(center_threshold=0.2, top_k=50),
                             info={'epochs': 3})
    manifest.save(str(tmp_path))
    loaded = ModelManifest.load(str(tmp_path))
    assert loaded == manifest
    assert loaded.output_names == ('semantic', 'confidence', 'instance', 'panoptic',
                                   'instance_score')
    assert loaded.input_names == ('image', 'center_threshold')
    assert make_manifest(task='semantic').output_names == ('semantic', 'confidence')


@pytest.mark.parametrize('overrides, message', [
    ({'task': 'detection'}, 'semantic, panoptic'),
    ({'input_height': 0}, 'must be positive'),
    ({'postprocess': PostprocessSettings(top_k=1000)}, 'below label_divisor'),
    ({'postprocess': PostprocessSettings(class_aware_grouping='no')},
     "postprocess.class_aware_grouping must be true or false, got 'no'"),
    ({'postprocess': PostprocessSettings(min_center_votes=2.5)},
     'postprocess.min_center_votes must be an integer'),
    ({'postprocess': PostprocessSettings(center_threshold=True)},
     'postprocess.center_threshold must be a number'),
])
def test_invalid_manifest_values(overrides, message):
    with pytest.raises(ManifestError, match=message):
        make_manifest(**overrides)


def test_missing_and_corrupt_packages(tmp_path):
    with pytest.raises(ManifestError, match='does not exist'):
        ModelManifest.load(str(tmp_path / 'nope'))
    with pytest.raises(ManifestError, match='has no manifest.yaml'):
        ModelManifest.load(str(tmp_path))
    (tmp_path / 'manifest.yaml').write_text('name: [broken')
    with pytest.raises(ManifestError, match='corrupt'):
        ModelManifest.load(str(tmp_path))
    (tmp_path / 'manifest.yaml').write_text('name: x\ntask: semantic\n')
    with pytest.raises(ManifestError, match='lacks architecture'):
        ModelManifest.load(str(tmp_path))
    (tmp_path / 'manifest.yaml').write_text(
        'name: x\narchitecture: enet\ntask: semantic\ninput_height: 8\ninput_width: 8\n'
        'bogus_field: 1\n')
    with pytest.raises(ManifestError, match="unknown key 'bogus_field'"):
        ModelManifest.load(str(tmp_path))


def test_interrupted_atomic_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'model.onnx'
    atomic_write_text(str(path), 'old')
    with pytest.raises(RuntimeError):
        with atomic_open(str(path), 'wb') as stream:
            stream.write(b'half of a new file')
            raise RuntimeError('killed mid-write')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['model.onnx']


def test_atomic_write_gives_normal_file_permissions(tmp_path):
    path = tmp_path / 'manifest.yaml'
    atomic_write_text(str(path), 'x')
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)
