"""packages/importers.staged_package: a failed import leaves nothing; a finished one is a
plain directory."""

import os

import pytest

from seg_perception.packages.importers import ModelImportError, staged_package


def test_success_moves_the_package_into_place_with_plain_directory_permissions(tmp_path):
    out = tmp_path / 'pkg'
    with staged_package(str(out)) as scratch:
        open(os.path.join(scratch, 'manifest.yaml'), 'w').close()
    assert sorted(os.listdir(out)) == ['manifest.yaml']
    os.mkdir(tmp_path / 'reference')
    assert os.stat(out).st_mode & 0o777 == os.stat(tmp_path / 'reference').st_mode & 0o777
    assert sorted(os.listdir(tmp_path)) == ['pkg', 'reference']


def test_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_package(str(tmp_path / 'pkg')) as scratch:
            open(os.path.join(scratch, 'model.onnx'), 'w').close()
            raise RuntimeError('conversion failed')
    assert os.listdir(tmp_path) == []


def test_an_existing_non_empty_destination_is_refused_and_kept(tmp_path):
    (tmp_path / 'pkg').mkdir()
    (tmp_path / 'pkg' / 'mine.txt').write_text('keep')
    with pytest.raises(ModelImportError, match='--out .* exists and is not an empty directory'):
        with staged_package(str(tmp_path / 'pkg')):
            pass
    assert (tmp_path / 'pkg' / 'mine.txt').read_text() == 'keep'
    with staged_package(str(tmp_path / 'empty')):
        pass
    (tmp_path / 'empty2').mkdir()
    with staged_package(str(tmp_path / 'empty2')) as scratch:
        open(os.path.join(scratch, 'a'), 'w').close()
    assert os.listdir(tmp_path / 'empty2') == ['a']
