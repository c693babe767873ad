"""``export``, ``train`` and ``synth-bag`` on a full or read-only disk: one line, a non-zero
exit, and nothing already there lost.

The tests run as root, for whom ``chmod`` does not stop writes: a read-only place is a path
below a regular file (ENOTDIR), and a full disk is an ``OSError(ENOSPC)`` raised by a patched
``os.fsync`` / writer call.
"""

import errno
import hashlib
import os

import pytest

from seg_perception.cli import main as cli_main

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.usefixtures('torch_one_thread')

EXPORT = ['export', '--model', 'enet', '--height', '32', '--width', '64']
TRAIN = ['train', '--model', 'enet', '--tasks', 'semantic', '--height', '64', '--width', '128',
         '--batch-size', '2', '--train-frames', '2', '--val-frames', '1', '--workers', '0',
         '--device', 'cpu', '--mixed-precision', 'off']


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def digests(directory):
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in sorted(os.listdir(directory))}


def last_error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


def test_export_below_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    out = tmp_path / 'file' / 'pkg'
    assert cli_main(EXPORT + ['--out', str(out)]) == 1
    assert last_error_line(capsys) == f'export: {out}: Not a directory; {out} was left as it was'


def test_export_on_a_full_disk_leaves_the_package_as_it_was(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'pkg'
    assert cli_main(EXPORT + ['--out', str(out)]) == 0
    before = digests(out)
    monkeypatch.setattr(os, 'fsync', enospc)
    assert cli_main(EXPORT + ['--seed', '1', '--out', str(out)]) == 1
    assert last_error_line(capsys) == (f'export: No space left on device; {out} was left as '
                                       'it was')
    assert digests(out) == before  # no temporary file left, every file unchanged


def test_export_on_a_full_disk_leaves_no_new_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(os, 'fsync', enospc)
    assert cli_main(EXPORT + ['--out', str(tmp_path / 'new')]) == 1
    assert os.listdir(tmp_path) == []


def test_train_below_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    out = tmp_path / 'file' / 'run'
    assert cli_main(TRAIN + ['--epochs', '1', '--out', str(out)]) == 1
    assert last_error_line(capsys) == (f'error: {out}: Not a directory; no '
                                       'checkpoint was written')


def test_train_on_a_full_disk_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    from seg_perception.training import loop
    from seg_perception.training.checkpoints import load_checkpoint
    real = loop.save_checkpoint
    saved = []

    def full_after_the_first_epoch(path, state):
        if saved:
            enospc()
        saved.append(path)
        real(path, state)

    monkeypatch.setattr(loop, 'save_checkpoint', full_after_the_first_epoch)
    out = tmp_path / 'run'
    assert cli_main(TRAIN + ['--epochs', '2', '--out', str(out)]) == 1
    checkpoint = out / 'checkpoints' / 'last.pt'
    assert last_error_line(capsys) == (
        f'error: No space left on device; {checkpoint} keeps the last finished epoch (run '
        'again with --resume once there is room)')
    assert load_checkpoint(str(checkpoint))['epoch'] == 0
    assert not (out / 'model').exists()


def test_the_frame_cache_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, 'posix_fallocate', enospc)
    out = tmp_path / 'run'
    assert cli_main(TRAIN + ['--epochs', '1', '--frame-cache', '--out', str(out)]) == 1
    assert last_error_line(capsys) == 'error: No space left on device; no checkpoint was written'


def test_synth_bag_on_a_full_disk_removes_the_partial_bag(tmp_path, monkeypatch, capsys):
    from seg_perception.bags.bag_io import BagWriter
    real = BagWriter.write_raw
    written = []

    def full_after_five_messages(self, topic, stamp, raw):
        if len(written) == 5:
            enospc()
        written.append(topic)
        real(self, topic, stamp, raw)

    monkeypatch.setattr(BagWriter, 'write_raw', full_after_five_messages)
    bag = tmp_path / 'bag'
    assert cli_main(['synth-bag', '--out', str(bag), '--frames', '3', '--size', '64x32']) == 2
    assert last_error_line(capsys) == ('seg-perception synth-bag: error: No space left on '
                                       f'device; the partial bag {bag} was removed')
    assert not bag.exists()
