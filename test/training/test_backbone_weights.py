"""``train --backbone-weights``: torchvision's ImageNet checkpoints start our encoders.

The fixtures (``scripts/make_backbone_fixtures.py``, run with the real torchvision) hold
torchvision's state-dict keys and the features its networks compute, in float64, for a
state dict drawn from a numpy recipe (``backbone_fixtures.seeded_arrays``). Loading the same
numbers into our encoders must give the same features: ResNet ``layer4`` vs our ``out`` and
MobileNetV3 ``features`` vs our ``out``, at output stride 32 (and 16, dilated, for
resnet50 / MobileNetV3, as torchvision's segmentation models use them). That proves the key
mapping right, not only shape-compatible.
"""

import os

import backbone_fixtures
import numpy as np
import pytest

from seg_perception.cli import main as cli_main
from seg_perception.models.backbones import build_backbone
from seg_perception.models.pretrained import (
    CLASSIFIER_PREFIX,
    load_torchvision_backbone,
    PretrainedWeightsError,
    torchvision_key,
)
from seg_perception.training.checkpoints import load_backbone_weights
from seg_perception.training.config import TrainConfig, TrainingError
from seg_perception.training.loop import train

torch = pytest.importorskip('torch')

ARCHS = list(backbone_fixtures.ARCHITECTURES)
#: Largest |ours - torchvision| allowed, relative to the largest |torchvision feature|.
RELATIVE_TOLERANCE = 1e-5


def fixture_state(arch, drop_suffix=None):
    fixture = backbone_fixtures.load_fixture(arch)
    arrays = backbone_fixtures.seeded_arrays(fixture.entries, fixture.weights_seed)
    assert backbone_fixtures.checksum(arrays) == pytest.approx(fixture.weights_checksum,
                                                               rel=1e-12), \
        'the numpy recipe no longer gives the numbers the fixture was written with'
    return fixture, {key: torch.from_numpy(value) for key, value in arrays.items()
                     if not (drop_suffix and key.endswith(drop_suffix))}


def saved_state(tmp_path, arch):
    path = str(tmp_path / f'{arch}.pth')
    torch.save(fixture_state(arch)[1], path)
    return path


@pytest.mark.parametrize('arch', ARCHS)
def test_the_mapping_covers_every_encoder_tensor_exactly_once(arch):
    fixture = backbone_fixtures.load_fixture(arch)
    own = build_backbone(backbone_fixtures.ARCHITECTURES[arch], 16).state_dict()
    kept = [(key, shape) for key, shape in fixture.entries
            if not key.startswith(CLASSIFIER_PREFIX[arch])]
    mapped = [torchvision_key(arch, key) for key, _ in kept]
    assert None not in mapped
    assert len(set(mapped)) == len(mapped) == len(own)
    assert set(mapped) == set(own)
    assert all(tuple(own[target].shape) == shape for target, (_, shape) in zip(mapped, kept))
    dropped = len(fixture.entries) - len(kept)
    assert dropped == (2 if arch.startswith('resnet') else 4)  # fc / classifier.0, .3


@pytest.mark.parametrize('arch, stride', [(a, s) for a in ARCHS
                                          for s in backbone_fixtures.load_fixture(a).features])
def test_loaded_encoders_compute_torchvision_features(arch, stride):
    fixture, state = fixture_state(arch)
    backbone = build_backbone(backbone_fixtures.ARCHITECTURES[arch], stride)
    report = load_torchvision_backbone(backbone, state, f'{arch}.pth')
    assert report.loaded == report.total == len(backbone.state_dict())
    assert report.not_loaded == ()
    assert all(key.startswith(CLASSIFIER_PREFIX[arch]) for key, _ in report.dropped)
    image = torch.from_numpy(backbone_fixtures.fixture_image(fixture.image_seed))
    with torch.no_grad():
        ours = backbone.double().eval()(image).out.numpy()
    expected = fixture.features[stride]
    assert ours.shape == expected.shape
    difference = np.abs(ours - expected).max()
    assert difference <= RELATIVE_TOLERANCE * np.abs(expected).max(), \
        f'max |difference| {difference:.3g}, features up to {np.abs(expected).max():.3g}'


def test_mobilenet_batch_norm_keeps_torchvision_eps():
    _, state = fixture_state('mobilenet_v3_large')
    backbone = build_backbone('mobilenetv3', 32)
    report = load_torchvision_backbone(backbone, state, 'm.pth')
    assert report.variance_shift == pytest.approx(1e-3 - 1e-5)
    assert torch.allclose(backbone.stem[1].running_var,
                          state['features.0.1.running_var'] + (1e-3 - 1e-5))
    assert any('running_var' in line for line in report.lines())


def test_files_without_batch_counters_load():
    """Files saved by torch < 0.4.1 lack ``num_batches_tracked``; every other tensor loads."""
    _, state = fixture_state('resnet18', drop_suffix='.num_batches_tracked')
    backbone = build_backbone('resnet18', 16)
    report = load_torchvision_backbone(backbone, state, 'old.pth')
    assert len(report.not_loaded) == 20 and report.loaded == report.total - 20
    assert all(key.endswith('num_batches_tracked') for key in report.not_loaded)
    assert torch.equal(backbone.layer4[1].conv2[0].weight, state['layer4.1.conv2.weight'])


@pytest.mark.parametrize('arch, backbone_name, first', [
    ('resnet50', 'resnet18', 'layer1.0.conv1.weight is (64, 64, 1, 1)'),
    ('resnet18', 'resnet50', 'layer1.0.conv1.weight is (64, 64, 3, 3)'),
    ('mobilenet_v3_large', 'resnet18', 'features.0.0.weight has no place in it'),
    ('resnet18', 'mobilenetv3', 'conv1.weight has no place in it'),
])
def test_another_architecture_is_refused_in_one_line(arch, backbone_name, first):
    _, state = fixture_state(arch)
    backbone = build_backbone(backbone_name, 16)
    before = {key: value.clone() for key, value in backbone.state_dict().items()}
    with pytest.raises(PretrainedWeightsError) as caught:
        load_torchvision_backbone(backbone, state, f'{arch}.pth')
    message = str(caught.value)
    assert '\n' not in message and first in message
    assert f'{arch}.pth does not fit' in message
    assert all(torch.equal(before[key], value) for key, value in backbone.state_dict().items())


def test_wrong_truncated_and_missing_files_give_one_line_training_errors(tmp_path):
    from seg_perception.models import build_model
    network = build_model('fcn_resnet18', num_classes=19)
    path = saved_state(tmp_path, 'resnet50')
    with pytest.raises(TrainingError, match="resnet50.pth does not fit.*torchvision's resnet50"):
        load_backbone_weights(network, path, log=lambda *_: None)
    truncated = tmp_path / 'resnet18-f37072fd.pth'
    data = open(saved_state(tmp_path, 'resnet18'), 'rb').read()
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(TrainingError) as caught:
        load_backbone_weights(network, str(truncated), log=lambda *_: None)
    assert 'corrupt' in str(caught.value) and '\n' not in str(caught.value)
    with pytest.raises(TrainingError, match='no ResNet / MobileNetV3 encoder'):
        load_backbone_weights(build_model('enet', num_classes=19), path, log=lambda *_: None)


@pytest.mark.parametrize('overrides, message', [
    ({'backbone_weights': 'x.pth', 'init_weights': 'y.pt'}, 'exclude each other'),
    ({'backbone_weights': '/nonexistent/resnet18.pth'}, 'does not exist'),
])
def test_bad_backbone_options_are_refused(tmp_path, overrides, message):
    config = TrainConfig(model='fcn_resnet18', height=64, width=128, **overrides)
    with pytest.raises(TrainingError, match=message):
        train(config, str(tmp_path), log=lambda *_: None)


def test_a_wrong_file_trains_nothing(tmp_path):
    out = tmp_path / 'run'
    config = TrainConfig(model='fcn_resnet18', task='semantic', height=64, width=128,
                         epochs=1, batch_size=2, train_frames=2, val_frames=2, workers=0,
                         device='cpu', backbone_weights=saved_state(tmp_path, 'resnet50'))
    with pytest.raises(TrainingError, match='does not fit the resnet18 encoder'):
        train(config, str(out), log=lambda *_: None)
    assert not os.path.exists(out / 'checkpoints' / 'last.pt')
    assert not os.path.exists(out / 'model')


def test_train_cli_starts_the_encoder_from_the_file(tmp_path, monkeypatch, capsys):
    """The encoder's tensors at the first forward pass (before any step) are the file's."""
    from seg_perception.training import loop
    path = saved_state(tmp_path, 'resnet18')
    seen = {}
    real_load = loop.load_backbone_weights

    def load_and_watch(network, source, log):
        real_load(network, source, log)

        def snapshot(module, _inputs):
            seen.setdefault('first', {k: v.clone() for k, v in module.state_dict().items()})

        network.encoder.register_forward_pre_hook(snapshot)

    monkeypatch.setattr(loop, 'load_backbone_weights', load_and_watch)
    torch.set_num_threads(1)
    assert cli_main(['train', '--model', 'fcn_resnet18', '--tasks', 'semantic', '--height', '64',
                     '--width', '128', '--epochs', '1', '--batch-size', '2', '--train-frames',
                     '2', '--val-frames', '2', '--workers', '0', '--device', 'cpu',
                     '--backbone-weights', path, '--out', str(tmp_path / 'run')]) == 0
    printed = capsys.readouterr().out
    assert "loaded 120 of the encoder's 120 tensors" in printed
    assert 'encoder tensors not loaded: none' in printed
    assert 'checkpoint keys dropped: fc.weight, fc.bias' in printed
    _, state = fixture_state('resnet18')
    first = seen['first']
    assert len(first) == 120
    for key, value in state.items():
        if not key.startswith('fc.'):
            assert torch.equal(first[torchvision_key('resnet18', key)], value), key


def test_train_cli_refuses_both_start_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(['train', '--model', 'fcn_resnet18', '--out', str(tmp_path), '--init-weights',
                  'a.pt', '--backbone-weights', 'b.pth'])
    assert 'not allowed with argument' in capsys.readouterr().err


def test_export_takes_a_built_in_label_set_name(tmp_path, capsys):
    from seg_perception.manifest import ModelManifest
    out = str(tmp_path / 'voc')
    assert cli_main(['export', '--model', 'enet', '--height', '32', '--width', '64',
                     '--labels', 'voc', '--out', out]) == 0
    manifest = ModelManifest.load(out)
    assert manifest.label_set.name == 'voc' and manifest.label_set.num_classes == 21
    assert cli_main(['export', '--model', 'enet', '--height', '32', '--width', '64',
                     '--labels', 'no-such-set', '--out', str(tmp_path / 'x')]) == 2
    assert 'unknown label set' in capsys.readouterr().err
