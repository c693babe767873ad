"""A diverging run stops with the step and a hint; export and loading refuse NaN weights."""

import os
import shutil

import numpy as np
import pytest

from seg_perception.cli import main as cli_main
from seg_perception.export.graph import ExportError
from seg_perception.export.onnx_export import export_model_package
from seg_perception.manifest import ModelManifest
from seg_perception.models import build_model
from seg_perception.packages.loading import (
    file_sha256,
    load_model_package,
    load_state_dict_into,
    PackageError,
)
from seg_perception.training.config import TrainConfig, TrainingError
from seg_perception.training.loop import train

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.usefixtures('torch_one_thread')


def poisoned(network):
    with torch.no_grad():
        next(network.parameters()).fill_(float('nan'))
    return network


def test_a_diverging_run_stops_at_the_step_with_a_hint_and_exports_nothing(tmp_path):
    config = TrainConfig(model='enet', task='semantic', height=64, width=128, epochs=2,
                         batch_size=2, train_frames=4, val_frames=2, workers=0, device='cpu',
                         seed=3, lr=1e12, mixed_precision='off')
    with pytest.raises(TrainingError) as raised:
        train(config, str(tmp_path), log=lambda *_: None)
    message = str(raised.value)
    assert 'training diverged' in message and 'lower --lr (now 1e+12)' in message
    assert ' step ' in message and '\n' not in message
    assert not os.path.exists(tmp_path / 'model')


def test_the_train_command_exits_non_zero_on_divergence(tmp_path, capsys):
    code = cli_main(['train', '--model', 'enet', '--tasks', 'semantic', '--height', '64',
                     '--width', '128', '--epochs', '1', '--batch-size', '2',
                     '--train-frames', '4', '--val-frames', '2', '--workers', '0',
                     '--device', 'cpu', '--mixed-precision', 'off', '--lr', '1e12',
                     '--out', str(tmp_path / 'run')])
    assert code != 0
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith('error: training diverged: the loss is nan at epoch 1 step')
    assert not os.path.exists(tmp_path / 'run' / 'model')


def test_export_refuses_non_finite_weights_and_writes_nothing(tmp_path):
    network = poisoned(build_model('enet', num_classes=19, panoptic=False))
    manifest = ModelManifest(name='nan', architecture='enet', task='semantic',
                             input_height=32, input_width=64)
    with pytest.raises(ExportError, match='not finite: 1 of .* NaN or infinity'):
        export_model_package(network, manifest, str(tmp_path / 'pkg'))
    assert not os.path.exists(tmp_path / 'pkg')


def test_export_refuses_weights_beyond_the_float16_range(tmp_path):
    network = build_model('enet', num_classes=19, panoptic=False)
    with torch.no_grad():
        next(network.parameters()).fill_(1e6)
    manifest = ModelManifest(name='big', architecture='enet', task='semantic',
                             input_height=32, input_width=64)
    with pytest.raises(ExportError, match='float16 range'):
        export_model_package(network, manifest, str(tmp_path / 'pkg'), fp16_weights=True)


def test_the_export_command_refuses_a_nan_weights_file(tmp_path, capsys):
    weights = tmp_path / 'nan.pt'
    torch.save(poisoned(build_model('enet', num_classes=19, panoptic=False)).state_dict(),
               weights)
    assert cli_main(['export', '--model', 'enet', '--height', '32', '--width', '64',
                     '--weights', str(weights), '--out', str(tmp_path / 'pkg')]) == 2
    assert 'are not finite' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'pkg')


def test_loading_refuses_nan_torch_weights():
    network = build_model('enet', num_classes=19, panoptic=False)
    state = poisoned(build_model('enet', num_classes=19, panoptic=False)).state_dict()
    with pytest.raises(PackageError, match='weights x.pt are not finite'):
        load_state_dict_into(network, state, 'x.pt')


def test_loading_refuses_a_graph_with_nan_weights(exported_package, tmp_path):
    onnx = pytest.importorskip('onnx')
    from onnx import numpy_helper
    package = str(tmp_path / 'pkg')
    shutil.copytree(exported_package('enet', 'semantic'), package)
    path = os.path.join(package, 'model.onnx')
    model = onnx.load(path)
    target = next(init for init in model.graph.initializer
                  if numpy_helper.to_array(init).dtype == np.float32
                  and numpy_helper.to_array(init).size > 1)
    values = numpy_helper.to_array(target).copy()
    values.flat[0] = np.nan
    target.CopyFrom(numpy_helper.from_array(values, target.name))
    onnx.save(model, path)
    manifest = ModelManifest.load(package)
    manifest.onnx_sha256 = file_sha256(path)  # a consistent package with NaN weights
    manifest.save(package)
    with pytest.raises(PackageError, match=f'graph weights are not finite: 1 .*{target.name}'):
        load_model_package(package)
