"""Manifest vs graph: the label set's class count is checked against the graph and the
weights at load, and every manifest field is strictly typed."""

import os
import shutil

import pytest
import yaml

from seg_perception.manifest import ManifestError, ModelManifest
from seg_perception.packages.loading import load_model_package, load_torch_network, PackageError

onnx = pytest.importorskip('onnx')


def edited_package(source, tmp_path, edit):
    """A copy of the package ``source`` whose manifest mapping ``edit`` changed in place."""
    package = str(tmp_path / 'pkg')
    shutil.copytree(source, package)
    path = os.path.join(package, 'manifest.yaml')
    with open(path) as stream:
        data = yaml.safe_load(stream)
    edit(data)
    with open(path, 'w') as stream:
        yaml.safe_dump(data, stream, sort_keys=False)
    return package


def resize_label_set(count, keep_recorded=False):
    def edit(data):
        classes = data['label_set']['classes']
        extra = [{'name': f'extra {i}', 'color': [i, i, i], 'thing': False} for i in range(3)]
        data['label_set']['classes'] = (classes + extra)[:count]
        if not keep_recorded:
            del data['num_classes']  # an edit that also removed the recorded count
    return edit


@pytest.mark.parametrize('count', [18, 22])
def test_a_label_set_of_another_size_is_refused_against_the_graph(
        exported_package, tmp_path, count):
    package = edited_package(exported_package('enet', 'semantic'), tmp_path,
                             resize_label_set(count))
    with pytest.raises(PackageError, match=f'graph decides among 19 classes but .* has {count}'):
        load_model_package(package)


def test_a_label_set_of_another_size_is_refused_against_the_recorded_count(
        exported_package, tmp_path):
    package = edited_package(exported_package('enet', 'semantic'), tmp_path,
                             resize_label_set(18, keep_recorded=True))
    with pytest.raises(ManifestError, match='has 18 classes but the graph was made for '
                                            'num_classes 19'):
        ModelManifest.load(package)


def test_the_torch_weights_classifier_is_checked(exported_package, tmp_path):
    package = edited_package(exported_package('enet', 'semantic'), tmp_path,
                             resize_label_set(22))
    manifest = ModelManifest.load(package)
    with pytest.raises(PackageError, match="classifier .* has 19 classes but the manifest's "
                                           "label set 'cityscapes' has 22"):
        load_torch_network(package, manifest)


def test_exported_packages_record_and_pass_the_class_count(exported_package):
    from seg_perception.packages.graph_check import graph_class_count
    manifest, package = load_model_package(exported_package('enet', 'semantic'))
    with open(os.path.join(package, 'manifest.yaml')) as stream:
        assert yaml.safe_load(stream)['num_classes'] == 19
    assert graph_class_count(onnx.load(manifest.onnx_path(package))) == 19


def test_export_refuses_a_graph_of_another_class_count(exported_package):
    from seg_perception.export.graph import ExportError
    from seg_perception.export.onnx_export import validate_onnx
    from seg_perception.labels import LabelSet
    manifest, package = load_model_package(exported_package('enet', 'semantic'))
    labels = manifest.label_set
    other = LabelSet(name='short', names=labels.names[:18], colors=labels.colors[:18],
                     thing_ids=())
    with open(manifest.onnx_path(package), 'rb') as stream:
        data = stream.read()
    manifest.label_set = other
    with pytest.raises(ExportError, match='decides among 19 classes, the label set'):
        validate_onnx(data, manifest)


def base_manifest():
    return ModelManifest(name='x', architecture='enet', task='semantic', input_height=32,
                         input_width=64).to_dict()


@pytest.mark.parametrize('key, value, message', [
    ('input_height', '32', 'input_height must be an integer'),
    ('batch', True, 'batch must be an integer'),
    ('name', 5, 'name must be a non-empty string'),
    ('mean', [0.5, 0.5], 'mean must be three finite numbers'),
    ('mean', ['0.5', 0.5, 0.5], 'mean must be three finite numbers'),
    ('std', [0.2, 0.0, 0.2], 'std must be positive'),
    ('channel_order', 'BGR', 'channel_order must be RGB'),
    ('architecture_kwargs', ['width', 2], 'architecture_kwargs must be a mapping'),
    ('label_divisor', 1000.0, 'label_divisor must be an integer'),
    ('onnx_file', '../model.onnx', 'onnx_file must be a file name inside the package'),
    ('weights_file', 3, 'weights_file must be a file name'),
    ('onnx_sha256', 'abc', 'onnx_sha256 must be 64 lower-case hex digits'),
    ('opset', '17', 'opset must be an integer'),
    ('info', ['x'], 'info must be a mapping'),
    ('format_version', True, 'format True is not supported'),
    ('postprocess', {'top_k': 64, 'topk': 3}, "unknown key 'topk' in postprocess"),
    ('postprocess', [1, 2], 'postprocess must be a mapping'),
    ('flip_test', 'no', 'flip_test must be true or false'),
    ('num_classes', '19', 'num_classes .19.'),
    ('extra', 1, "unknown key 'extra'"),
])
def test_manifest_fields_are_strictly_typed(key, value, message):
    data = base_manifest()
    data[key] = value
    with pytest.raises(ManifestError, match=message) as raised:
        ModelManifest.from_dict(data, source='m.yaml')
    assert str(raised.value).startswith('m.yaml: ') and '\n' not in str(raised.value)


@pytest.mark.parametrize('edit, message', [
    (lambda classes: classes[0].update(thing='false'), '"thing" must be true or false'),
    (lambda classes: classes[0].update(color=[300, 0, 0]), 'not three integers in 0..255'),
])
def test_label_set_entries_are_strict_in_a_manifest(edit, message):
    data = base_manifest()
    edit(data['label_set']['classes'])
    with pytest.raises(ManifestError, match=message):
        ModelManifest.from_dict(data, source='m.yaml')


def test_a_void_id_out_of_range_is_refused_in_a_manifest():
    data = base_manifest()
    data['label_set']['void_id'] = 300
    with pytest.raises(ManifestError, match='"void_id" must be an integer in 0..255'):
        ModelManifest.from_dict(data, source='m.yaml')


def test_a_programmatic_manifest_with_two_means_is_refused():
    with pytest.raises(ManifestError, match='mean must be three finite numbers'):
        ModelManifest(name='x', architecture='enet', task='semantic', input_height=32,
                      input_width=64, mean=(0.5, 0.5))
