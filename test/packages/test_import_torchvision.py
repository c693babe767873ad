"""``seg-perception import torchvision``: torchvision's six segmentation networks, checked
against torchvision itself without importing it.

The fixtures in ``test/fixtures/torchvision/`` were made by the real torchvision: for each
builder the tensor names / shapes of its state dict, torchvision's logits and argmax on a
seeded 96x64 image, and the seed of the numpy recipe (``torchvision_fixtures.fixture_array``)
that filled every tensor, BatchNorm running statistics included. The test regenerates the
state dict from the recipe, saves it as a checkpoint and imports it. To regenerate the
fixtures (torchvision is never a dependency of the package)::

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/tvenv/bin/python scripts/make_torchvision_fixtures.py
"""

import collections
import os

import numpy as np
import pytest
from torchvision_fixtures import (
    ARCHITECTURES,
    fixture_state_dict,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    load_fixture,
    MEAN,
    normalise,
    STD,
)

from seg_perception.cli import main as cli_main
from seg_perception.export.tensorrt_check import check_tensorrt_compatibility
from seg_perception.manifest import ModelManifest
from seg_perception.models import build_model
from seg_perception.packages.importers import ModelImportError
from seg_perception.packages.importers.torchvision import import_torchvision
from seg_perception.packages.loading import file_sha256
from seg_perception.segmenter import Segmenter

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.usefixtures('torch_one_thread')

SIZE = (IMAGE_WIDTH, IMAGE_HEIGHT)  # (width, height) of the imported graphs
MIN_AGREEMENT = 0.995
#: Operators an imported graph must not have (data-dependent or shape-computing chains).
SHAPE_OPS = {'Shape', 'Where', 'ConstantOfShape', 'Expand', 'NonZero'}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """``checkpoint(arch) -> path``: torchvision's state dict of the fixture, saved once."""
    root = tmp_path_factory.mktemp('torchvision_checkpoints')
    paths = {}

    def make(arch):
        if arch not in paths:
            paths[arch] = str(root / f'{arch}.pth')
            torch.save(fixture_state_dict(load_fixture(arch)), paths[arch])
        return paths[arch]

    return make


def _agreement(semantic: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean(semantic.astype(np.int64) == expected.astype(np.int64)))


def _leftovers(out_dir) -> list:
    parent = os.path.dirname(str(out_dir))
    name = os.path.basename(str(out_dir))
    return [entry for entry in os.listdir(parent) if entry.startswith(('.' + name, name))]


@pytest.mark.parametrize('arch', ARCHITECTURES)
def test_network_has_torchvisions_state_dict_and_logits(arch):
    fixture = load_fixture(arch)
    network = build_model(f'torchvision_{arch}', num_classes=21).eval()
    own = {name: tuple(value.shape) for name, value in network.state_dict().items()}
    theirs = {name: tuple(shape) for name, shape, _ in fixture.entries
              if not name.startswith('aux_classifier.')}
    assert own == theirs
    state = {name: value for name, value in fixture_state_dict(fixture).items() if name in own}
    network.load_state_dict(state, strict=True)
    with torch.no_grad():
        logits = network(torch.from_numpy(normalise(fixture.image)))['semantic'][0].numpy()
    # The fixture's logits are float16: 1e-3 relative covers their rounding.
    print(f'{arch}: eager max |logit - torchvision| = {np.abs(logits - fixture.logits).max():.5f}')
    np.testing.assert_allclose(logits, fixture.logits, rtol=1e-3, atol=1e-3)
    assert _agreement(logits.argmax(axis=0), fixture.argmax) == 1.0


@pytest.mark.parametrize('arch', ARCHITECTURES)
def test_imported_package_segments_like_torchvision(arch, checkpoint, tmp_path):
    fixture = load_fixture(arch)
    out_dir = tmp_path / 'package'
    manifest = import_torchvision(checkpoint(arch), arch, str(out_dir), input_size=SIZE)

    written = ModelManifest.load(str(out_dir))
    assert written.architecture == f'torchvision_{arch}' == manifest.architecture
    assert (written.input_width, written.input_height) == SIZE
    assert written.task == 'semantic' and written.label_set.name == 'voc'
    assert written.label_set.num_classes == 21
    assert written.mean == pytest.approx(MEAN) and written.std == pytest.approx(STD)
    assert written.info['source_arch'] == arch
    assert written.info['source_sha256'] == file_sha256(checkpoint(arch))
    aux = sum(name.startswith('aux_classifier.') for name, _, _ in fixture.entries)
    assert written.info['dropped'] == ('nothing' if not aux else
                                       f'{aux} aux_classifier.* tensors (training-only '
                                       'auxiliary head)')
    assert sorted(os.listdir(out_dir)) == ['manifest.yaml', 'model.onnx', 'weights.pt']

    onnx_path = written.onnx_path(str(out_dir))
    assert check_tensorrt_compatibility(onnx_path) == []
    import onnx
    graph = onnx.load(onnx_path, load_external_data=False).graph
    operators = collections.Counter(node.op_type for node in graph.node)
    assert not SHAPE_OPS & set(operators), operators

    with Segmenter.from_package(str(out_dir), backend='onnxruntime', device='cpu') as segmenter:
        result = segmenter.segment(fixture.image)
    agreement = _agreement(result.semantic, fixture.argmax)
    print(f'{arch}: onnxruntime package argmax = torchvision argmax on {agreement:.4%} of '
          f'{fixture.argmax.size} pixels')
    assert agreement >= MIN_AGREEMENT


def test_torch_backend_rebuilds_the_network_from_the_registry(checkpoint, tmp_path):
    arch = 'lraspp_mobilenet_v3_large'
    fixture = load_fixture(arch)
    import_torchvision(checkpoint(arch), arch, str(tmp_path / 'package'), input_size=SIZE)
    with Segmenter.from_package(str(tmp_path / 'package'), backend='torch',
                                device='cpu') as segmenter:
        result = segmenter.segment(fixture.image)
    assert _agreement(result.semantic, fixture.argmax) >= MIN_AGREEMENT


def _one_line_error(call) -> str:
    with pytest.raises(ModelImportError) as error:
        call()
    message = str(error.value)
    assert '\n' not in message
    return message


def test_checkpoint_of_another_architecture_names_the_keys_and_writes_nothing(checkpoint,
                                                                              tmp_path):
    out_dir = tmp_path / 'package'
    message = _one_line_error(lambda: import_torchvision(
        checkpoint('deeplabv3_resnet50'), 'fcn_resnet50', str(out_dir), input_size=SIZE))
    assert 'not a torchvision fcn_resnet50 state dict' in message
    assert 'missing keys [classifier.' in message
    assert 'unexpected keys [classifier.0.convs.0.0.weight' in message
    assert not out_dir.exists() and not _leftovers(out_dir)


def test_resnet101_checkpoint_given_as_resnet50_is_refused(checkpoint, tmp_path):
    message = _one_line_error(lambda: import_torchvision(
        checkpoint('fcn_resnet101'), 'fcn_resnet50', str(tmp_path / 'p'), input_size=SIZE))
    assert '0 missing keys' in message and 'unexpected keys [backbone.layer3.6.' in message


def test_truncated_checkpoint_is_refused_in_one_line(checkpoint, tmp_path):
    arch = 'lraspp_mobilenet_v3_large'
    data = open(checkpoint(arch), 'rb').read()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    out_dir = tmp_path / 'package'
    message = _one_line_error(lambda: import_torchvision(str(truncated), arch, str(out_dir),
                                                         input_size=SIZE))
    assert 'is not a readable PyTorch checkpoint (truncated or corrupt?)' in message
    assert not out_dir.exists() and not _leftovers(out_dir)
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    assert 'truncated or corrupt' in _one_line_error(
        lambda: import_torchvision(str(garbage), arch, str(out_dir), input_size=SIZE))


def test_label_count_must_equal_the_classifier_outputs(checkpoint, tmp_path):
    message = _one_line_error(lambda: import_torchvision(
        checkpoint('lraspp_mobilenet_v3_large'), 'lraspp_mobilenet_v3_large',
        str(tmp_path / 'p'), input_size=SIZE, labels='cityscapes'))
    assert message.startswith('--labels cityscapes has 19 classes')
    assert 'has 21 outputs' in message
    assert 'unknown label set' in _one_line_error(lambda: import_torchvision(
        checkpoint('lraspp_mobilenet_v3_large'), 'lraspp_mobilenet_v3_large',
        str(tmp_path / 'p'), input_size=SIZE, labels='pascal'))


def test_input_size_must_be_a_multiple_of_the_output_stride(checkpoint, tmp_path):
    message = _one_line_error(lambda: import_torchvision(
        checkpoint('lraspp_mobilenet_v3_large'), 'lraspp_mobilenet_v3_large',
        str(tmp_path / 'p'), input_size=(520, 520)))
    assert 'multiples of 16' in message and '512 or 528' in message


def test_wrapped_prefixed_and_old_checkpoints_import(checkpoint, tmp_path):
    """``{'model': state}``, ``module.`` keys and missing ``num_batches_tracked`` all load."""
    arch = 'deeplabv3_mobilenet_v3_large'
    fixture = load_fixture(arch)
    state = torch.load(checkpoint(arch), weights_only=True)
    old = {f'module.{name}': value for name, value in state.items()
           if not name.endswith('num_batches_tracked')}
    path = tmp_path / 'reference_training.pth'
    torch.save({'model': old, 'epoch': 30}, str(path))
    manifest = import_torchvision(str(path), arch, str(tmp_path / 'package'), input_size=SIZE)
    assert manifest.info['source_entry'] == 'model'
    assert manifest.info['filled'].endswith('num_batches_tracked buffers set to 0')
    with Segmenter.from_package(str(tmp_path / 'package'), backend='onnxruntime',
                                device='cpu') as segmenter:
        result = segmenter.segment(fixture.image)
    assert _agreement(result.semantic, fixture.argmax) >= MIN_AGREEMENT


def test_cli_imports_and_refuses_with_status_2(checkpoint, tmp_path, capsys):
    from seg_perception.commands._import_torchvision import ARCH_CHOICES
    from seg_perception.packages.importers.torchvision import architecture_choices
    assert ARCH_CHOICES == architecture_choices() == ARCHITECTURES
    arch = 'lraspp_mobilenet_v3_large'
    out_dir = tmp_path / 'package'
    assert cli_main(['import', 'torchvision', checkpoint(arch), '--arch', arch, '--out',
                     str(out_dir), '--input-size', '96x64', '--name', 'voc_lraspp']) == 0
    printed = capsys.readouterr().out
    assert 'imported voc_lraspp (torchvision lraspp_mobilenet_v3_large, 21 classes voc, 96x64)' \
        in printed
    assert 'TensorRT 8.5 / 10.x: no unsupported nodes' in printed
    # --out now holds a package: refused before the checkpoint is read.
    assert cli_main(['import', 'torchvision', checkpoint(arch), '--arch', arch, '--out',
                     str(out_dir), '--input-size', '96x64']) == 2
    error = capsys.readouterr().err
    assert 'exists and is not an empty directory' in error and error.count('\n') == 1
    assert cli_main(['import', 'torchvision', checkpoint(arch), '--arch', arch, '--out',
                     str(tmp_path / 'other'), '--input-size', '96by64']) == 2
    assert "--input-size '96by64' must be WIDTHxHEIGHT" in capsys.readouterr().err
