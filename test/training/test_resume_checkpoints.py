"""``train --resume`` with a checkpoint it cannot continue from: one line, the file kept."""

import os

import pytest

from seg_perception.cli import main as cli_main
from seg_perception.training.checkpoints import load_checkpoint, save_checkpoint
from seg_perception.training.config import TrainConfig, TrainingError
from seg_perception.training.loop import train

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.usefixtures('torch_one_thread')

ARGS = ['--model', 'enet', '--tasks', 'semantic', '--height', '64', '--width', '128',
        '--epochs', '2', '--batch-size', '2', '--train-frames', '2', '--val-frames', '1',
        '--workers', '0', '--device', 'cpu', '--mixed-precision', 'off']


def config(**overrides):
    values = dict(model='enet', task='semantic', height=64, width=128, epochs=2, batch_size=2,
                  train_frames=2, val_frames=1, workers=0, device='cpu', seed=3,
                  mixed_precision='off')
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp('run')
    train(config(epochs=1), str(out), log=lambda *_: None)
    return str(out / 'checkpoints' / 'last.pt')


def run_with(tmp_path, state):
    out = tmp_path / 'run'
    os.makedirs(out / 'checkpoints')
    path = str(out / 'checkpoints' / 'last.pt')
    save_checkpoint(path, state)
    return str(out), path


def test_a_checkpoint_without_optimizer_state_is_refused_with_the_way_out(
        checkpoint, tmp_path, capsys):
    state = load_checkpoint(checkpoint)
    del state['optimizer']
    out, path = run_with(tmp_path, state)
    assert cli_main(['train'] + ARGS + ['--out', out, '--resume']) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f'error: cannot resume {path}: it holds no optimizer state, so the run '
                     'cannot continue where it stopped; start a new run from its weights '
                     f'with --init-weights {path}')
    assert set(load_checkpoint(path)) == set(state)  # the file is left as it was


@pytest.mark.parametrize('edit, message', [
    (lambda s: s.update(optimizer={'state': {}, 'param_groups': []}), 'do not fit'),
    (lambda s: s.update(epoch='1'), 'malformed'),
    (lambda s: s['model'].pop(next(iter(s['model']))), 'do not fit this network'),
])
def test_malformed_checkpoints_are_one_line_errors(checkpoint, tmp_path, edit, message):
    state = load_checkpoint(checkpoint)
    edit(state)
    out, _ = run_with(tmp_path, state)
    with pytest.raises(TrainingError, match=message) as raised:
        train(config(), out, resume=True, log=lambda *_: None)
    assert '\n' not in str(raised.value)
