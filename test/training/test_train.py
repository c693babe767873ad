"""Training end to end at a tiny size: log, checkpoints, resume, export, bad input."""

import csv
import dataclasses
import os

import numpy as np
import pytest

from seg_perception.training.checkpoints import load_checkpoint
from seg_perception.training.config import TrainConfig, TrainingError
from seg_perception.training.loop import train

torch = pytest.importorskip('torch')


def tiny_config(**overrides):
    values = dict(model='enet', task='panoptic', height=64, width=128, epochs=2, batch_size=2,
                  train_frames=4, val_frames=2, workers=0, device='cpu', seed=3)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = str(tmp_path_factory.mktemp('train'))
    package, result = train(tiny_config(frame_cache=os.path.join(out, 'cache')), out,
                            log=lambda *_: None)
    return out, package, result


def test_training_writes_log_checkpoint_and_package(trained):
    out, package, result = trained
    with open(os.path.join(out, 'training_log.csv')) as stream:
        rows = list(csv.DictReader(stream))
    assert [row['epoch'] for row in rows] == ['1', '2']
    assert all(float(row['loss']) > 0 for row in rows)
    assert rows[-1]['val_miou'] != ''
    state = load_checkpoint(os.path.join(out, 'checkpoints', 'last.pt'))
    assert state['epoch'] == 1 and state['config']['model'] == 'enet'
    assert 0.0 <= result.miou <= 1.0 and result.frames == 2
    assert sorted(os.listdir(package)) == ['manifest.yaml', 'model.onnx', 'weights.pt']


def test_exported_package_runs_in_the_segmenter(trained):
    from seg_perception import Segmenter
    _, package, _ = trained
    segmenter = Segmenter.from_package(package, backend='onnxruntime')
    assert segmenter.manifest.info['trained_by'] == 'seg-perception train'
    result = segmenter.segment(np.zeros((50, 70, 3), dtype=np.uint8))
    assert result.semantic.shape == (50, 70) and result.panoptic.dtype == np.int32


def test_resume_continues_after_the_last_epoch(trained, tmp_path):
    out, _, _ = trained
    logs = []
    train(tiny_config(epochs=3, frame_cache=os.path.join(out, 'cache')), out, resume=True,
          log=logs.append)
    assert any('resumed' in line and 'after epoch 2' in line for line in logs)
    with open(os.path.join(out, 'training_log.csv')) as stream:
        assert [row['epoch'] for row in csv.DictReader(stream)] == ['1', '2', '3']
    with pytest.raises(TrainingError, match='trained with height=64'):
        train(tiny_config(height=128), out, resume=True, log=lambda *_: None)


def test_frame_cache_gives_the_generated_frames(trained):
    from seg_perception.data.synthetic.generator import SceneGenerator
    from seg_perception.labels import cityscapes
    from seg_perception.training.frames import FrameSource
    out, _, _ = trained
    source = FrameSource('synthetic', 'train', 128, 64, 3, 4, cityscapes())
    source.materialize(os.path.join(out, 'cache'), workers=0, log=lambda *_: None)
    expected = SceneGenerator(128, 64, 3).generate(2)
    cached = source[2]
    assert np.array_equal(cached.image, expected.image)
    assert np.array_equal(cached.semantic, expected.semantic)
    assert np.array_equal(cached.instance, expected.instance)


def test_corrupt_checkpoint_is_named(tmp_path):
    os.makedirs(tmp_path / 'checkpoints')
    (tmp_path / 'checkpoints' / 'last.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(TrainingError, match='last.pt is corrupt'):
        train(tiny_config(), str(tmp_path), resume=True, log=lambda *_: None)


@pytest.mark.parametrize('overrides, message', [
    ({'model': 'resnet9000'}, 'valid names'),
    ({'height': 60}, 'not a multiple of 8'),
    ({'task': 'depth'}, 'semantic, panoptic'),
    ({'data': '/nonexistent/cityscapes'}, 'neither "synthetic" nor a directory'),
    ({'mixed_precision': 'fp8'}, 'auto, bf16, off'),
    ({'class_balanced_crops': 2.0}, 'class_balanced_crop'),
])
def test_bad_options_are_refused(tmp_path, overrides, message):
    with pytest.raises(Exception, match=message):
        train(tiny_config(**overrides), str(tmp_path), log=lambda *_: None)


def test_init_weights_from_a_package_starts_from_its_weights(trained, tmp_path):
    from seg_perception.packages.loading import read_state_dict
    _, package, _ = trained
    out = str(tmp_path / 'finetune')
    train(tiny_config(epochs=1, init_weights=package, lr=0.0, train_frames=2), out,
          log=lambda *_: None)
    before = read_state_dict(os.path.join(package, 'weights.pt'))
    after = load_checkpoint(os.path.join(out, 'checkpoints', 'last.pt'))['model']
    key = next(k for k, v in before.items() if v.is_floating_point() and v.numel() > 16)
    assert torch.allclose(after[key].float(), before[key].float(), atol=1e-2)
    with pytest.raises(Exception, match='does not exist'):
        train(tiny_config(init_weights=str(tmp_path / 'nope.pt')), out, log=lambda *_: None)


def test_init_partial_loads_what_matches_after_a_head_change(trained, tmp_path):
    """A semantic ENet's weights start a panoptic ENet: all but the new instance head."""
    from seg_perception.models import build_model
    from seg_perception.packages.loading import PackageError
    from seg_perception.training.checkpoints import load_initial_weights
    semantic = build_model('enet', num_classes=19, panoptic=False)
    path = str(tmp_path / 'semantic.pt')
    torch.save(semantic.state_dict(), path)
    panoptic = build_model('enet', num_classes=19, panoptic=True)
    fresh_head = {k: v.clone() for k, v in panoptic.state_dict().items() if 'instance' in k}
    messages = []
    load_initial_weights(panoptic, path, partial=True, log=messages.append)
    loaded = panoptic.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in semantic.state_dict().items())
    assert all(torch.equal(loaded[k], v) for k, v in fresh_head.items())
    assert f'{len(fresh_head)} keep their initialisation' in messages[0]
    with pytest.raises(PackageError, match='do not fit'):  # strict without partial
        load_initial_weights(build_model('enet', num_classes=19, panoptic=True), path)
    with pytest.raises(PackageError, match='another architecture'):
        load_initial_weights(build_model('unet', num_classes=19), path, partial=True)


def test_crop_trains_on_smaller_crops_and_exports_the_network_size(tmp_path):
    from seg_perception.labels import cityscapes
    from seg_perception.manifest import ModelManifest
    from seg_perception.training.frames import FrameSource, TrainingSamples
    config = tiny_config(epochs=1, crop_height=32, crop_width=64, train_frames=2)
    source = FrameSource('synthetic', 'train', 128, 64, 3, 2, cityscapes())
    sample = TrainingSamples(source, config, cityscapes())[0]
    assert sample['image'].shape == (3, 32, 64) and sample['offset'].shape == (2, 32, 64)
    package, _ = train(config, str(tmp_path), log=lambda *_: None)
    manifest = ModelManifest.load(package)
    assert (manifest.input_height, manifest.input_width) == (64, 128)
    with pytest.raises(TrainingError, match='crop 60x32 is not a multiple of 8'):
        train(tiny_config(crop_height=32, crop_width=60), str(tmp_path), log=lambda *_: None)


def test_a_cityscapes_folder_of_another_size_trains_at_the_network_size(tmp_path):
    """Frames of a dataset folder are resized to the network size (as the node resizes
    camera frames) before augmentation and validation."""
    from seg_perception.cli import main
    from seg_perception.labels import cityscapes
    from seg_perception.training.frames import FrameSource
    root = str(tmp_path / 'cityscapes')
    for split, seed in (('train', 1), ('val', 2)):
        assert main(['synth', '--out', root, '--count', '2', '--seed', str(seed),
                     '--size', '96x48', '--split', split]) == 0
    frame = FrameSource(root, 'val', 128, 64, 0, 0, cityscapes())[1]
    assert frame.image.shape == (64, 128, 3) and frame.semantic.shape == (64, 128)
    assert frame.instance.shape == (64, 128) and frame.instance.max() > 0
    package, result = train(tiny_config(data=root, epochs=1), str(tmp_path / 'run'),
                            log=lambda *_: None)
    assert result.frames == 2 and 0.0 <= result.pq <= 1.0
    assert os.path.isfile(os.path.join(package, 'model.onnx'))


def test_channels_last_training_exports_a_plain_package(tmp_path):
    from seg_perception.packages.loading import read_state_dict
    package, result = train(tiny_config(epochs=1, channels_last=True), str(tmp_path),
                            log=lambda *_: None)
    assert 0.0 <= result.miou <= 1.0
    weights = read_state_dict(os.path.join(package, 'weights.pt'))
    four_d = [v for v in weights.values() if v.dim() == 4]
    assert four_d and all(v.is_contiguous() for v in four_d)
    state = load_checkpoint(os.path.join(str(tmp_path), 'checkpoints', 'last.pt'))
    assert state['config']['channels_last'] is True
    # The weights were trained in NHWC: the checkpoint keeps their strides.
    spatial = [v for v in state['model'].values() if v.dim() == 4 and v.shape[-1] > 1
               and v.shape[1] > 1]
    assert spatial and all(v.is_contiguous(memory_format=torch.channels_last)
                           and not v.is_contiguous() for v in spatial)


def test_bfloat16_autocast_choice():
    from seg_perception.training.device import use_bfloat16_autocast
    assert use_bfloat16_autocast('bf16', 'cpu') and not use_bfloat16_autocast('off', 'cuda')
    assert use_bfloat16_autocast('auto', 'cuda')
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert use_bfloat16_autocast('auto', 'cpu') == (
        native and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_bfloat16_training_with_class_balanced_crops_learns(tmp_path):
    """A few bfloat16 steps on class-balanced crops lower the loss and keep float32 weights."""
    config = tiny_config(epochs=3, train_frames=4, mixed_precision='bf16',
                         class_balanced_crops=1.0, lr=5e-3, val_every=10)
    logs = []
    train(config, str(tmp_path), log=logs.append)
    assert any('bfloat16 autocast' in line for line in logs)
    with open(os.path.join(tmp_path, 'training_log.csv')) as stream:
        losses = [float(row['loss']) for row in csv.DictReader(stream)]
    assert losses[-1] < losses[0]
    state = load_checkpoint(os.path.join(tmp_path, 'checkpoints', 'last.pt'))['model']
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())


def test_init_weights_from_a_package_without_weights_uses_its_onnx(tmp_path):
    """An ONNX-only package: its convolutions (BatchNorm folded) start the fine-tuning."""
    from seg_perception.export.onnx_export import export_model_package
    from seg_perception.manifest import ModelManifest
    from seg_perception.models import build_model
    torch.manual_seed(0)
    source = build_model('fcn_resnet18', num_classes=19, panoptic=False).eval()
    package = str(tmp_path / 'onnx_only')
    export_model_package(source, ModelManifest(
        name='x', architecture='fcn_resnet18', task='semantic', input_height=64,
        input_width=128), package, save_weights=False)
    logs = []
    out = str(tmp_path / 'run')
    train(tiny_config(model='fcn_resnet18', task='semantic', epochs=1, train_frames=2,
                      lr=0.0, init_weights=package), out, log=logs.append)
    assert any(line.startswith('recovered ') for line in logs)
    after = load_checkpoint(os.path.join(out, 'checkpoints', 'last.pt'))['model']
    # BatchNorm folded into the stem: same direction, other scale per output channel.
    stem = source.state_dict()['encoder.stem.0.0.weight'].flatten(1)
    recovered = after['encoder.stem.0.0.weight'].flatten(1)
    cosine = torch.nn.functional.cosine_similarity(stem, recovered, dim=1)
    assert bool((cosine > 0.999).all())
    with pytest.raises(TrainingError, match='--init-partial'):
        train(tiny_config(model='fcn_resnet18', epochs=1, train_frames=2, init_weights=package),
              str(tmp_path / 'run2'), log=lambda *_: None)


def test_a_budget_that_ends_at_an_epoch_boundary_logs_no_empty_epoch(tmp_path):
    logs = []
    package, result = train(tiny_config(epochs=3, max_minutes=1e-9), str(tmp_path),
                            log=logs.append)
    assert any('stopping after epoch 0' in line for line in logs)
    assert not any(line.startswith('epoch ') for line in logs)  # no step, no epoch row
    assert not os.path.exists(os.path.join(tmp_path, 'training_log.csv'))
    assert os.path.isfile(os.path.join(package, 'model.onnx')) and result.frames == 2


def test_the_recorded_command_has_paths_relative_to_the_current_directory():
    from seg_perception.training.loop import relative_command_line
    line = ("seg-perception train --init-weights /repo/seg_perception/zoo/enet_panoptic "
            "--frame-cache=/repo/run/frame_cache --out /repo/run/enet --data /data/city "
            "--crop 512x256 --note '/repo/a b'")
    assert relative_command_line(line, '/repo/') == (
        'seg-perception train --init-weights seg_perception/zoo/enet_panoptic '
        '--frame-cache=run/frame_cache --out run/enet --data /data/city --crop 512x256 '
        "--note 'a b'")
    assert relative_command_line('--out /repo --out /repository/x', '/repo') == (
        '--out . --out /repository/x')
    assert relative_command_line('', '/repo') == ''
    assert relative_command_line("--out '/repo/x", '/repo') == "--out '/repo/x"


def test_the_manifest_records_the_command_without_absolute_paths(tmp_path, monkeypatch):
    from seg_perception.manifest import ModelManifest
    monkeypatch.chdir(tmp_path)
    command = f'seg-perception train --model enet --out {tmp_path}/run'
    config = dataclasses.replace(tiny_config(epochs=1, train_frames=2, val_frames=1),
                                 frame_cache=str(tmp_path / 'cache'))
    package, _ = train(config, str(tmp_path / 'run'), command_line=command,
                       log=lambda *_: None)
    info = ModelManifest.load(package).info
    assert info['command'] == 'seg-perception train --model enet --out run'
    assert info['config']['frame_cache'] == 'cache'
