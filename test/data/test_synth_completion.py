"""A killed or failed ``synth`` leaves a split that readers refuse until it is finished."""

import errno
import json
import os

import pytest

from seg_perception.cli import main as cli_main
from seg_perception.data import cityscapes_writer
from seg_perception.data.cityscapes import CityscapesDataset, DatasetError
from seg_perception.data.completion import incomplete_runs, WriteRun

SYNTH = ['synth', '--count', '3', '--size', '64x32', '--seed', '5']


def synth(root, *extra):
    return cli_main(SYNTH + ['--out', str(root)] + list(extra))


def test_a_finished_run_is_marked_complete_and_read(tmp_path):
    assert synth(tmp_path) == 0
    marker = WriteRun('train', 'synth', 5, 0, 3).marker(str(tmp_path))
    with open(marker) as stream:
        assert json.load(stream)['complete'] is True
    assert len(CityscapesDataset(str(tmp_path), 'train')) == 3


def test_a_killed_run_is_refused_until_it_is_run_again(tmp_path, monkeypatch):
    real = cityscapes_writer.write_cityscapes_frame
    calls = []

    def killed_after_two_frames(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(cityscapes_writer, 'write_cityscapes_frame', killed_after_two_frames)
    assert synth(tmp_path) == 130
    monkeypatch.undo()
    with pytest.raises(DatasetError, match='split train is incomplete: a synth run writing it '
                                           'did not finish .*train_synth_000005_000000.json'):
        CityscapesDataset(str(tmp_path), 'train', skip_bad=True)
    assert len(os.listdir(tmp_path / 'leftImg8bit' / 'train' / 'synth')) == 2
    assert synth(tmp_path) == 0
    assert len(CityscapesDataset(str(tmp_path), 'train')) == 3


def test_an_incomplete_run_of_another_split_does_not_block_this_one(tmp_path, monkeypatch):
    assert synth(tmp_path, '--split', 'val') == 0
    monkeypatch.setattr(cityscapes_writer, 'write_cityscapes_frame',
                        lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    assert synth(tmp_path, '--seed', '6') == 130
    assert incomplete_runs(str(tmp_path), 'train') and not incomplete_runs(str(tmp_path), 'val')
    assert len(CityscapesDataset(str(tmp_path), 'val')) == 3


def test_a_full_disk_is_one_line_and_the_split_stays_incomplete(tmp_path, monkeypatch, capsys):
    real = cityscapes_writer.atomic_write_bytes
    writes = []

    def full_after_seven_files(path, data):
        if len(writes) == 7:  # ENOSPC: tests run as root, so a chmod would not stop writes
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        writes.append(path)
        real(path, data)

    monkeypatch.setattr(cityscapes_writer, 'atomic_write_bytes', full_after_seven_files)
    assert synth(tmp_path) == 1
    error = capsys.readouterr().err.strip()
    assert '\n' not in error and 'No space left on device; 1 of 3 frames were written' in error
    assert 'marks the split incomplete until the same command is run again' in error
    with pytest.raises(DatasetError, match='incomplete'):
        CityscapesDataset(str(tmp_path), 'train')
    monkeypatch.undo()
    assert synth(tmp_path) == 0
    assert len(CityscapesDataset(str(tmp_path), 'train')) == 3


def test_a_path_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    assert synth(tmp_path / 'file' / 'data') == 1  # ENOTDIR: unwritable even for root
    error = capsys.readouterr().err.strip()
    assert error == (f'seg-perception synth: error: {tmp_path / "file" / "data"}: Not a '
                     'directory; nothing was written')


def test_synth_bag_marks_its_cityscapes_folder(tmp_path, capsys):
    assert cli_main(['synth-bag', '--out', str(tmp_path / 'bag'), '--frames', '2',
                     '--size', '64x32', '--cameras', '2',
                     '--cityscapes', str(tmp_path / 'city')]) == 0
    assert sorted(os.listdir(tmp_path / 'city' / 'synth_runs')) == [
        'val_cam0_000000_000000.json', 'val_cam1_000001_000000.json']
    assert not incomplete_runs(str(tmp_path / 'city'), 'val')
    assert len(CityscapesDataset(str(tmp_path / 'city'), 'val')) == 4
