"""The torch backend turns a manifest it cannot build from into one-line errors."""

import dataclasses
import os
import shutil

import pytest
import yaml

from seg_perception.manifest import ManifestError, ModelManifest
from seg_perception.packages.loading import load_torch_network, PackageError

pytest.importorskip('torch')


@pytest.fixture()
def package(exported_package, tmp_path):
    copy = str(tmp_path / 'pkg')
    shutil.copytree(exported_package('enet', 'semantic'), copy)
    return copy


@pytest.mark.parametrize('kwargs', [{'bogus': 1}, {'width': 'abc'}])
def test_bogus_architecture_kwargs_are_a_backend_error(package, kwargs):
    from seg_perception.runtime.base import BackendError
    from seg_perception.runtime.torch_backend import TorchBackend
    manifest = dataclasses.replace(ModelManifest.load(package), architecture_kwargs=kwargs)
    with pytest.raises(PackageError, match='architecture_kwargs .* do not build enet'):
        load_torch_network(package, manifest)
    with pytest.raises(BackendError, match='do not build enet') as raised:
        TorchBackend(manifest, package)
    assert '\n' not in str(raised.value)


def test_bogus_architecture_kwargs_in_the_file_fail_in_one_line(package):
    from seg_perception import Segmenter
    path = os.path.join(package, 'manifest.yaml')
    with open(path) as stream:
        data = yaml.safe_load(stream)
    data['architecture_kwargs'] = {'bogus': 1}
    with open(path, 'w') as stream:
        yaml.safe_dump(data, stream)
    with pytest.raises(RuntimeError, match="do not build enet: .*'bogus'"):
        Segmenter.from_package(package, backend='torch')


@pytest.mark.parametrize('key', ['num_classes', 'panoptic'])
def test_architecture_kwargs_may_not_override_the_label_set_or_task(key):
    with pytest.raises(ManifestError, match=f'architecture_kwargs may not set {key}'):
        ModelManifest(name='x', architecture='enet', task='semantic', input_height=32,
                      input_width=64, architecture_kwargs={key: 3})


def test_a_two_value_mean_is_refused(package):
    from seg_perception.runtime.base import BackendError
    from seg_perception.runtime.torch_backend import TorchBackend
    manifest = ModelManifest.load(package)
    with pytest.raises(ManifestError, match='mean must be three finite numbers'):
        dataclasses.replace(manifest, mean=(0.5, 0.5))
    manifest.mean = (0.5, 0.5)  # changed after it was checked
    with pytest.raises(BackendError, match='cannot build the torch graph .* from its manifest'):
        TorchBackend(manifest, package)
