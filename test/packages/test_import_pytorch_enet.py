"""``seg-perception import pytorch-enet``: a davidtvs/PyTorch-ENet checkpoint -> model package.

The fixture ``test/fixtures/pytorch_enet/`` is their own ``models/enet.py`` ``ENet(20)`` (the
Cityscapes model) with random weights and non-trivial BatchNorm statistics, saved in their
checkpoint format, with their prediction on a fixed 160x96 image. Regenerate it with
``.venv/bin/python scripts/make_pytorch_enet_fixture.py --repo PYTORCH_ENET_CHECKOUT`` (a
clone of https://github.com/davidtvs/PyTorch-ENet; only their ``models/enet.py`` is read).
"""

import hashlib
import io
import os
import zipfile

import numpy as np
import pytest

from seg_perception import cli
from seg_perception.manifest import ModelManifest
from seg_perception.packages.importers import ModelImportError
from seg_perception.packages.importers.pytorch_enet import import_pytorch_enet

torch = pytest.importorskip('torch')
pytest.importorskip('onnxruntime')

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'fixtures', 'pytorch_enet')
CHECKPOINT = os.path.join(FIXTURE, 'enet_cityscapes_random.pth')
WIDTH, HEIGHT = 160, 96
pytestmark = pytest.mark.usefixtures('torch_one_thread')


@pytest.fixture(scope='module')
def reference():
    return np.load(os.path.join(FIXTURE, 'reference.npz'))


@pytest.fixture(scope='module')
def package(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('pytorch_enet') / 'cityscapes')
    import_pytorch_enet(CHECKPOINT, 'cityscapes', out_dir, input_size=(WIDTH, HEIGHT))
    return out_dir


def _segment(package_dir, image, backend='onnxruntime'):
    from seg_perception.segmenter import Segmenter
    with Segmenter.from_package(package_dir, backend=backend, device='cpu') as segmenter:
        return segmenter.segment(image)


@pytest.mark.parametrize('backend', ['onnxruntime', 'torch'])
def test_prediction_agrees_with_pytorch_enets_model(package, reference, backend):
    """Their argmax over the 19 real classes (channel k -> train id k - 1) against the
    package's semantic map through the Segmenter. Measured: 15359 of 15360 pixels (99.993 %)
    with both backends; the one differing pixel is a near-tie (their logit margin 1.1e-6:
    the graph multiplies by 1/255 where ToTensor divides by 255)."""
    result = _segment(package, reference['image'], backend)
    theirs = reference['real_argmax']
    agree = result.semantic == theirs
    assert agree.mean() >= 0.995, f'{agree.mean():.5f} of pixels agree'
    assert np.all(reference['margin'][~agree].astype(np.float32) < 1e-3), 'only near-ties'
    # Where their full 20-way argmax is a real class it is the same map, shifted by one.
    full = reference['argmax'].astype(np.int64)
    assert np.mean((result.semantic == full - 1)[full > 0]) >= 0.995


def test_unlabeled_is_never_published(package, reference):
    """Channel 0 (unlabeled) is dropped in the graph: where their model's argmax is
    unlabeled (2.8 % of the fixture's pixels) the package gives their best real class, and
    no pixel is void or outside the 19 train ids."""
    result = _segment(package, reference['image'])
    unlabeled = reference['argmax'] == 0
    assert unlabeled.any()
    assert set(np.unique(result.semantic)) <= set(range(19))
    assert np.mean(result.semantic[unlabeled] == reference['real_argmax'][unlabeled]) >= 0.99
    assert np.all(result.confidence > 1.0 / 19 - 1e-6)  # a softmax over 19 classes


def test_manifest_records_source_and_normalisation(package):
    manifest = ModelManifest.load(package)
    with open(CHECKPOINT, 'rb') as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()
    assert manifest.architecture == 'pytorch_enet' and manifest.task == 'semantic'
    assert (manifest.input_width, manifest.input_height) == (WIDTH, HEIGHT)
    assert manifest.mean == (0.0, 0.0, 0.0) and manifest.std == (1.0, 1.0, 1.0)
    assert manifest.label_set.name == 'cityscapes' and manifest.label_set.num_classes == 19
    assert manifest.architecture_kwargs == {'output_channels': 20,
                                            'class_channels': list(range(1, 20))}
    assert manifest.info['source_sha256'] == digest
    assert manifest.info['source_epoch'] == 3
    assert manifest.info['source_miou'] == pytest.approx(0.0421)


def test_check_onnx_is_clean(package, capsys):
    import onnx

    from seg_perception.export.tensorrt_check import check_tensorrt_compatibility
    manifest = ModelManifest.load(package)
    assert check_tensorrt_compatibility(manifest.onnx_path(package)) == []
    graph = onnx.load(manifest.onnx_path(package)).graph
    assert 'MaxUnpool' not in {node.op_type for node in graph.node}
    assert all(len(n.output) == 1 for n in graph.node if n.op_type == 'MaxPool')
    assert cli.main(['check-onnx', package]) == 0
    assert 'OK for TensorRT' in capsys.readouterr().out


def _camvid_checkpoint(path, seed=0):
    from seg_perception.models import build_model
    torch.manual_seed(seed)
    network = build_model('pytorch_enet', num_classes=12).eval()
    torch.save({'epoch': 280, 'miou': np.float64(0.65), 'state_dict': network.state_dict(),
                'optimizer': {}}, path)
    return network


def test_camvid_drops_channel_11(tmp_path):
    """CamVid's unlabeled is their last channel (11): the package's argmax is over 0..10."""
    network = _camvid_checkpoint(str(tmp_path / 'ENet'))
    out_dir = str(tmp_path / 'camvid')
    assert cli.main(['import', 'pytorch-enet', str(tmp_path / 'ENet'), '--dataset', 'camvid',
                     '--out', out_dir, '--input-size', '96x64']) == 0
    manifest = ModelManifest.load(out_dir)
    assert manifest.label_set.name == 'camvid' and manifest.label_set.num_classes == 11
    assert manifest.label_set.names[3] == 'road'
    image = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    with torch.no_grad():
        logits = network(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    expected = logits['semantic'][0, :11].argmax(0).numpy()
    assert np.mean(_segment(out_dir, image).semantic == expected) >= 0.995


def test_default_input_sizes_are_theirs(tmp_path, monkeypatch):
    import seg_perception.export.onnx_export as onnx_export
    written = []
    monkeypatch.setattr(onnx_export, 'export_model_package',
                        lambda network, manifest, out_dir: written.append(manifest) or manifest)
    _camvid_checkpoint(str(tmp_path / 'camvid.pth'))
    import_pytorch_enet(CHECKPOINT, 'cityscapes', str(tmp_path / 'a'))
    import_pytorch_enet(str(tmp_path / 'camvid.pth'), 'camvid', str(tmp_path / 'b'))
    assert [(m.input_width, m.input_height) for m in written] == [(1024, 512), (480, 360)]


def _write(path, data):
    if isinstance(data, bytes):
        with open(path, 'wb') as stream:
            stream.write(data)
    else:
        torch.save(data, path)
    return str(path)


def _bad_checkpoints(tmp_path):
    with open(CHECKPOINT, 'rb') as stream:
        good = stream.read()
    state = torch.load(CHECKPOINT, weights_only=False)['state_dict']
    from seg_perception.models import build_model
    shrunk = dict(state)
    shrunk['regular1_1.ext_conv1.0.weight'] = torch.zeros(8, 64, 1, 1)
    return {
        'truncated': (good[:len(good) // 2], 'not a readable PyTorch checkpoint'),
        'garbage': (b'not a checkpoint at all\n' * 10, 'not a readable PyTorch checkpoint'),
        'empty': (b'', 'not a readable PyTorch checkpoint'),
        'list': ([1, 2, 3], 'holds a list, not a PyTorch-ENet checkpoint'),
        'tensor': (torch.zeros(3), 'holds a Tensor'),
        'no_state_dict': ({'epoch': 1, 'miou': 0.5}, "without 'state_dict'"),
        'bare_state_dict': (state, 'looks like a bare state dict'),
        'not_tensors': ({'state_dict': {'a': 1}}, 'not a mapping of names to tensors'),
        'module': (build_model('pytorch_enet', num_classes=20),
                   'does not load'),
        'other_network': ({'state_dict': build_model('enet', num_classes=19).state_dict()},
                          'missing keys'),
        'wrong_shape': ({'state_dict': shrunk}, 'wrong shape'),
    }


@pytest.mark.parametrize('case', ['truncated', 'garbage', 'empty', 'list', 'tensor',
                                  'no_state_dict', 'bare_state_dict', 'not_tensors', 'module',
                                  'other_network', 'wrong_shape'])
def test_bad_checkpoints_give_one_line_errors_and_write_nothing(tmp_path, case):
    data, message = _bad_checkpoints(tmp_path)[case]
    path = _write(tmp_path / 'ENet', data)
    out_dir = tmp_path / 'out'
    with pytest.raises(ModelImportError, match=message) as error:
        import_pytorch_enet(path, 'cityscapes', str(out_dir), input_size=(WIDTH, HEIGHT))
    assert '\n' not in str(error.value)
    assert sorted(os.listdir(tmp_path)) == ['ENet'], 'nothing written beside the checkpoint'


def test_wrong_dataset_names_the_class_count(tmp_path):
    with pytest.raises(ModelImportError, match=r'has 20 output classes .* --dataset camvid '
                       r'needs 12 .*looks like --dataset cityscapes') as error:
        import_pytorch_enet(CHECKPOINT, 'camvid', str(tmp_path / 'out'))
    assert '\n' not in str(error.value)
    assert not os.listdir(tmp_path)


def test_numpy_1_pickled_miou_loads(tmp_path):
    """Their checkpoints were pickled by numpy 1.x: ``miou`` is a
    ``numpy.core.multiarray.scalar``, which weights_only loading must allow by that name."""
    source = zipfile.ZipFile(CHECKPOINT)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith('data.pkl'):
                assert b'numpy._core.multiarray\nscalar' in data
                data = data.replace(b'numpy._core.multiarray\nscalar',
                                    b'numpy.core.multiarray\nscalar')
            target.writestr(info, data)
    path = _write(tmp_path / 'ENet', buffer.getvalue())
    from seg_perception.packages.importers.pytorch_enet import read_checkpoint
    checkpoint = read_checkpoint(path)
    assert checkpoint.miou == pytest.approx(0.0421) and checkpoint.epoch == 3


@pytest.mark.parametrize('size,message', [('161x96', 'multiples of 8'), ('0x96', 'multiples'),
                                          ('160', 'WIDTHxHEIGHT')])
def test_cli_rejects_bad_input_sizes_in_one_line(tmp_path, capsys, size, message):
    out_dir = str(tmp_path / 'out')
    assert cli.main(['import', 'pytorch-enet', CHECKPOINT, '--dataset', 'cityscapes',
                     '--out', out_dir, '--input-size', size]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and '\n' not in error
    assert not os.path.exists(out_dir)


def test_cli_refuses_a_non_empty_out_dir_and_keeps_it(tmp_path, capsys):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    (out_dir / 'keep.txt').write_text('mine')
    assert cli.main(['import', 'pytorch-enet', CHECKPOINT, '--dataset', 'cityscapes',
                     '--out', str(out_dir), '--input-size', f'{WIDTH}x{HEIGHT}']) == 2
    assert 'not an empty directory' in capsys.readouterr().err
    assert os.listdir(out_dir) == ['keep.txt']


def test_cli_missing_checkpoint(tmp_path, capsys):
    assert cli.main(['import', 'pytorch-enet', str(tmp_path / 'nope'), '--dataset', 'camvid',
                     '--out', str(tmp_path / 'out')]) == 2
    assert 'does not exist' in capsys.readouterr().err
