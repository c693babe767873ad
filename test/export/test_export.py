"""Export with fused post-processing, model packages, checksums, atomic writes, export CLI."""

import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from seg_perception.cli import main as cli_main
from seg_perception.export.graph import ExportError, FusedSegmentationGraph
from seg_perception.export.onnx_export import export_model_package, export_onnx_bytes
from seg_perception.manifest import ManifestError, ModelManifest
from seg_perception.models import build_model
from seg_perception.packages.loading import (
    file_sha256,
    load_model_package,
    load_torch_network,
    PackageError,
)

HEIGHT, WIDTH = 64, 128
CASES = [('enet', 'semantic'), ('enet', 'panoptic'),
         ('deeplabv3plus_mobilenetv3', 'semantic'), ('deeplabv3plus_mobilenetv3', 'panoptic')]
ONNX_TYPES = {'semantic': onnx.TensorProto.INT32, 'confidence': onnx.TensorProto.FLOAT,
              'instance': onnx.TensorProto.INT32, 'panoptic': onnx.TensorProto.INT32,
              'instance_score': onnx.TensorProto.FLOAT}


pytestmark = pytest.mark.usefixtures('torch_one_thread')


def _dims(value):
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def _image(manifest, seed=0):
    rng = np.random.default_rng(seed)
    shape = (manifest.batch, 3, manifest.input_height, manifest.input_width)
    return rng.integers(0, 256, size=shape).astype(np.float32)


@pytest.mark.parametrize('name,task', CASES)
def test_graph_io_matches_manifest(name, task, exported_package):
    manifest, package_dir = load_model_package(exported_package(name, task, HEIGHT, WIDTH))
    model = onnx.load(manifest.onnx_path(package_dir))
    assert model.opset_import[0].version == 17 and manifest.opset == 17
    assert [v.name for v in model.graph.input] == list(manifest.input_names)
    assert [v.name for v in model.graph.output] == list(manifest.output_names)
    image = model.graph.input[0]
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(image) == [1, 3, HEIGHT, WIDTH]
    for output in model.graph.output:
        assert output.type.tensor_type.elem_type == ONNX_TYPES[output.name], output.name
        expected = [1, manifest.postprocess.top_k] if output.name == 'instance_score' \
            else [1, HEIGHT, WIDTH]
        assert _dims(output) == expected, output.name
    if task == 'panoptic':
        threshold = model.graph.input[1]
        assert threshold.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert _dims(threshold) == [1]
    assert all(i.type.tensor_type.elem_type != onnx.TensorProto.INT64
               for i in list(model.graph.input) + list(model.graph.output))
    # ENet's PReLUs leave as depthwise convs (models.layers.DepthwisePReLU), and no instance
    # map is resized to full resolution only to be sampled on the grouping grid.
    assert 'PRelu' not in {node.op_type for node in model.graph.node}
    if task == 'panoptic' and name == 'enet':
        assert not [n.name for n in model.graph.node
                    if n.op_type == 'Resize' and 'instance' in n.name]


@pytest.mark.parametrize('name,task', CASES)
def test_onnxruntime_matches_eager_graph(name, task, exported_package, tmp_path):
    import onnxruntime
    from seg_test_models import export_lively_package
    if task == 'panoptic':
        # A plain random heatmap is flat to 1e-5: every cell would be a near-tie between
        # centres, decided by the rounding of the grouping's matrix product, which differs
        # between ONNX Runtime and torch. The livened head has real margins.
        package = export_lively_package(name, task, HEIGHT, WIDTH, str(tmp_path / 'lively'))
    else:
        package = exported_package(name, task, HEIGHT, WIDTH)
    manifest, package_dir = load_model_package(package)
    network = load_torch_network(package_dir, manifest)
    graph = FusedSegmentationGraph(network, manifest).eval()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(manifest.onnx_path(package_dir), options,
                                           providers=['CPUExecutionProvider'])
    image = _image(manifest)
    feeds = {'image': image}
    # Far below any centre: every peak counts, so many instances take part.
    threshold = np.array([-1e6], dtype=np.float32)
    if manifest.is_panoptic:
        feeds['center_threshold'] = threshold
    ort = dict(zip(manifest.output_names, session.run(list(manifest.output_names), feeds)))
    with torch.no_grad():
        args = (torch.from_numpy(image),) + \
            ((torch.from_numpy(threshold),) if manifest.is_panoptic else ())
        eager = dict(zip(manifest.output_names, (t.numpy() for t in graph(*args))))
    for output in manifest.output_names:
        assert ort[output].dtype == eager[output].dtype, output
        assert ort[output].shape == eager[output].shape, output
    assert ort['semantic'].dtype == np.int32
    assert np.mean(ort['semantic'] == eager['semantic']) >= 0.999
    np.testing.assert_allclose(ort['confidence'], eager['confidence'], atol=1e-4)
    if manifest.is_panoptic:
        assert np.mean(ort['panoptic'] == eager['panoptic']) >= 0.999
        assert np.mean(ort['instance'] == eager['instance']) >= 0.999
        np.testing.assert_allclose(ort['instance_score'], eager['instance_score'], atol=1e-4)
        assert (ort['instance'] > 0).any(), 'a threshold of -1e6 should give instances'


def test_manifest_round_trip_and_checksum(exported_package):
    package_dir = exported_package('enet', 'panoptic', HEIGHT, WIDTH)
    manifest, resolved = load_model_package(package_dir)
    assert resolved == package_dir
    assert manifest == ModelManifest.load(package_dir)
    assert load_model_package(os.path.join(package_dir, 'manifest.yaml'))[1] == package_dir
    assert manifest.onnx_sha256 == file_sha256(manifest.onnx_path(package_dir))
    assert (manifest.architecture, manifest.task, manifest.weights_file) == \
        ('enet', 'panoptic', 'weights.pt')
    assert manifest.info['weights_dtype'] == 'float32'


def _copy(package_dir, tmp_path):
    return shutil.copytree(package_dir, str(tmp_path / 'package'))


def test_corrupt_or_missing_onnx_is_detected(exported_package, tmp_path):
    package_dir = _copy(exported_package('enet', 'semantic', HEIGHT, WIDTH), tmp_path)
    onnx_path = os.path.join(package_dir, 'model.onnx')
    with open(onnx_path, 'r+b') as stream:
        stream.seek(200)
        byte = stream.read(1)
        stream.seek(200)
        stream.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(PackageError, match='model.onnx is corrupt or was modified: sha256'):
        load_model_package(package_dir)
    os.remove(onnx_path)
    with pytest.raises(PackageError, match='model.onnx is missing'):
        load_model_package(package_dir)
    with pytest.raises(ManifestError, match='does not exist'):
        load_model_package(str(tmp_path / 'nowhere'))


def test_bad_weights_files_give_clear_errors(exported_package, tmp_path):
    package_dir = _copy(exported_package('enet', 'semantic', HEIGHT, WIDTH), tmp_path)
    manifest, _ = load_model_package(package_dir)
    weights = os.path.join(package_dir, 'weights.pt')
    mismatched = ModelManifest.from_dict(dict(manifest.to_dict(), architecture='unet'))
    with pytest.raises(PackageError, match='do not fit the network'):
        load_torch_network(package_dir, mismatched)
    with open(weights, 'wb') as stream:
        stream.write(b'\x00garbage')
    with pytest.raises(PackageError, match='corrupt or not a torch state dict'):
        load_torch_network(package_dir, manifest)
    os.remove(weights)
    with pytest.raises(PackageError, match='does not exist'):
        load_torch_network(package_dir, manifest)
    no_weights = ModelManifest.from_dict(dict(manifest.to_dict(), weights_file=None))
    load_torch_network(package_dir, no_weights)  # read from the ONNX graph instead
    other = ModelManifest.from_dict(dict(no_weights.to_dict(), architecture='unet'))
    with pytest.raises(PackageError, match='no torch weights file and .*another architecture'):
        load_torch_network(package_dir, other)


def test_fp16_weights_are_smaller_and_load_into_fp32(tmp_path):
    torch.manual_seed(0)
    network = build_model('enet', num_classes=19)
    manifest = ModelManifest(name='e', architecture='enet', task='semantic',
                             input_height=32, input_width=64)
    full = export_model_package(network, manifest, str(tmp_path / 'fp32'))
    half = export_model_package(network, manifest, str(tmp_path / 'fp16'), fp16_weights=True)
    assert half.info['weights_dtype'] == 'float16'
    size = os.path.getsize
    assert size(str(tmp_path / 'fp16' / 'weights.pt')) < \
        0.7 * size(str(tmp_path / 'fp32' / 'weights.pt'))
    assert full.onnx_sha256 == half.onnx_sha256  # the graph keeps FP32 weights
    loaded = load_torch_network(str(tmp_path / 'fp16'), half)
    for key, value in loaded.state_dict().items():
        reference = network.state_dict()[key]
        assert value.dtype == reference.dtype, key
        if value.is_floating_point():
            torch.testing.assert_close(value, reference, rtol=1e-3, atol=1e-3)


class _FailingNetwork(torch.nn.Module):
    """A registry-shaped network whose forward fails during tracing."""

    num_classes = 19
    panoptic = False

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 19, 1)

    def forward(self, x):
        raise RuntimeError('boom in the middle of the export')


def test_failed_export_writes_nothing_and_keeps_old_package(exported_package, tmp_path):
    manifest = ModelManifest(name='x', architecture='enet', task='semantic',
                             input_height=32, input_width=64)
    target = str(tmp_path / 'new')
    with pytest.raises(ExportError, match='boom in the middle of the export'):
        export_model_package(_FailingNetwork(), manifest, target)
    assert not os.path.exists(target) or os.listdir(target) == []

    old = _copy(exported_package('enet', 'semantic', HEIGHT, WIDTH), tmp_path)
    before = {f: file_sha256(os.path.join(old, f)) for f in os.listdir(old)}
    with pytest.raises(ExportError):
        export_model_package(_FailingNetwork(), manifest, old)
    assert {f: file_sha256(os.path.join(old, f)) for f in os.listdir(old)} == before


def test_export_interrupted_at_the_last_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / 'pkg'
    (target / 'manifest.yaml').mkdir(parents=True)  # the final rename onto it must fail
    manifest = ModelManifest(name='x', architecture='enet', task='semantic',
                             input_height=32, input_width=64)
    with pytest.raises(OSError):
        export_model_package(build_model('enet'), manifest, str(target))
    names = sorted(os.listdir(target))
    assert names == ['manifest.yaml', 'model.onnx', 'weights.pt'], names
    assert not any(n.endswith('.tmp') for n in names)
    onnx.checker.check_model(onnx.load(str(target / 'model.onnx')))  # complete, not half
    with pytest.raises(ManifestError):
        load_model_package(str(target))


def test_graph_rejects_inconsistent_network_and_manifest():
    manifest = ModelManifest(name='x', architecture='enet', task='panoptic',
                             input_height=32, input_width=64)
    with pytest.raises(ExportError, match='without the panoptic head'):
        FusedSegmentationGraph(build_model('enet', panoptic=False), manifest)
    with pytest.raises(ExportError, match='has 5 classes but label set'):
        FusedSegmentationGraph(build_model('enet', num_classes=5, panoptic=True), manifest)
    semantic = ModelManifest(name='x', architecture='enet', task='semantic',
                             input_height=32, input_width=64)
    graph = FusedSegmentationGraph(build_model('enet'), semantic).eval()
    with pytest.raises(ExportError, match='opset 11 is not supported'):
        export_onnx_bytes(graph, semantic, opset=11)


def test_package_module_imports_without_torch(exported_package):
    package_dir = exported_package('enet', 'semantic', HEIGHT, WIDTH)
    code = ('import sys; sys.modules["torch"] = None\n'
            'from seg_perception.packages.loading import load_model_package\n'
            f'manifest, _ = load_model_package({package_dir!r})\n'
            'assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]\n'
            'print(manifest.name)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'enet_semantic'


def test_export_cli_end_to_end(tmp_path, capsys):
    out = str(tmp_path / 'enet_pan')
    assert cli_main(['export', '--model', 'enet', '--tasks', 'panoptic', '--height', '32',
                     '--width', '64', '--out', out]) == 0
    captured = capsys.readouterr()
    assert 'RANDOMLY INITIALISED' in captured.err
    assert 'instance_score: float32 (1, 200)' in captured.out
    manifest, _ = load_model_package(out)
    assert 'RANDOM' in manifest.info['weights'] and manifest.is_panoptic
    assert cli_main(['check-onnx', out]) == 0
    assert 'OK for TensorRT' in capsys.readouterr().out

    weights = str(tmp_path / 'trained.pt')
    torch.manual_seed(3)
    trained = build_model('enet', num_classes=19)
    torch.save(trained.state_dict(), weights)
    out2 = str(tmp_path / 'enet_sem')
    assert cli_main(['export', '--model', 'enet', '--height', '32', '--width', '64',
                     '--weights', weights, '--fp16-weights', '--out', out2]) == 0
    assert 'RANDOMLY' not in capsys.readouterr().err
    manifest2, _ = load_model_package(out2)
    assert manifest2.info['weights'] == weights
    assert manifest2.info['weights_source_sha256'] == file_sha256(weights)
    loaded = load_torch_network(out2, manifest2).state_dict()
    for key, value in trained.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(loaded[key], value, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('argv,message', [
    (['--model', 'enet', '--height', '30', '--width', '64'], 'multiple of 8'),
    (['--model', 'nope', '--height', '32', '--width', '64'], 'valid names: '),
    (['--model', 'enet', '--tasks', 'instance', '--height', '32', '--width', '64'],
     'not one of semantic, panoptic'),
    (['--model', 'enet', '--tasks', 'panoptic', '--num-classes', '4', '--height', '32',
      '--width', '64'], 'needs thing classes'),
    (['--model', 'enet', '--height', '32', '--width', '64', '--weights', '/no/such.pt'],
     'does not exist'),
])
def test_export_cli_errors(argv, message, tmp_path, capsys):
    assert cli_main(['export'] + argv + ['--out', str(tmp_path / 'o')]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'o' / 'model.onnx')


def _direct_and_mirrored_heads(network, manifest, image):
    """The network's heads on the normalised image and on its mirror image, separately."""
    graph = FusedSegmentationGraph(network, dataclasses.replace(manifest, flip_test=False))
    with torch.no_grad():
        return graph.heads(image), graph.heads(torch.flip(image, dims=[3]))


def test_flip_test_averages_the_mirrored_semantic_logits_only(tmp_path):
    from seg_test_models import export_lively_package
    package = export_lively_package('enet', 'panoptic', HEIGHT, WIDTH, str(tmp_path / 'p'),
                                    batch=2, flip_test=True)
    manifest, package_dir = load_model_package(package)
    assert manifest.flip_test and ModelManifest.load(package_dir).flip_test
    network = load_torch_network(package_dir, manifest).eval()
    image = torch.from_numpy(_image(manifest, seed=4))
    direct, mirrored = _direct_and_mirrored_heads(network, manifest, image)
    with torch.no_grad():
        flipped = FusedSegmentationGraph(network, manifest).eval().heads(image)
    expected = (direct['semantic'] + torch.flip(mirrored['semantic'], dims=[3])) / 2
    torch.testing.assert_close(flipped['semantic'], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(flipped['center'], direct['center'], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(flipped['offset'], direct['offset'], rtol=1e-5, atol=1e-5)
    # A random network is not mirror-symmetric: the averaged argmax differs from the direct.
    assert (flipped['semantic'].argmax(1) != direct['semantic'].argmax(1)).any()


def test_flip_test_graph_in_onnxruntime_matches_eager(tmp_path):
    import onnxruntime
    from seg_test_models import export_lively_package
    # ENet: a random DeepLab's logits are nearly uniform, so the averaging would not show.
    package = export_lively_package('enet', 'panoptic', HEIGHT, WIDTH,
                                    str(tmp_path / 'p'), batch=2, flip_test=True)
    manifest, package_dir = load_model_package(package)
    graph = FusedSegmentationGraph(load_torch_network(package_dir, manifest), manifest).eval()
    plain = FusedSegmentationGraph(load_torch_network(package_dir, manifest),
                                   dataclasses.replace(manifest, flip_test=False)).eval()
    session = onnxruntime.InferenceSession(manifest.onnx_path(package_dir),
                                           providers=['CPUExecutionProvider'])
    image = _image(manifest, seed=5)
    threshold = np.array([-1e6], dtype=np.float32)
    ort = dict(zip(manifest.output_names, session.run(
        list(manifest.output_names), {'image': image, 'center_threshold': threshold})))
    with torch.no_grad():
        args = (torch.from_numpy(image), torch.from_numpy(threshold))
        eager = dict(zip(manifest.output_names, (t.numpy() for t in graph(*args))))
        without = dict(zip(manifest.output_names, (t.numpy() for t in plain(*args))))
    assert ort['semantic'].shape == (2, HEIGHT, WIDTH)
    for output in ('semantic', 'panoptic', 'instance'):
        assert np.mean(ort[output] == eager[output]) >= 0.999, output
    np.testing.assert_allclose(ort['confidence'], eager['confidence'], atol=1e-4)
    assert np.mean(ort['semantic'] != without['semantic']) > 0.001


def test_export_cli_flip_test_flag(tmp_path, capsys):
    out = str(tmp_path / 'flip')
    assert cli_main(['export', '--model', 'enet', '--tasks', 'panoptic', '--height', '32',
                     '--width', '64', '--flip-test', '--out', out]) == 0
    capsys.readouterr()
    assert load_model_package(out)[0].flip_test
    assert cli_main(['check-onnx', out]) == 0
    assert 'OK for TensorRT' in capsys.readouterr().out


def test_manifest_refuses_a_non_boolean_flip_test(exported_package, tmp_path):
    package_dir = _copy(exported_package('enet', 'panoptic', HEIGHT, WIDTH), tmp_path)
    path = os.path.join(package_dir, 'manifest.yaml')
    with open(path) as handle:
        text = handle.read()
    with open(path, 'w') as handle:
        handle.write(text.replace('flip_test: false', "flip_test: 'no'"))
    with pytest.raises(ManifestError, match='flip_test must be true or false'):
        load_model_package(package_dir)


def test_weights_recover_from_an_onnx_only_flip_test_package(tmp_path):
    pytest.importorskip('onnx')
    torch.manual_seed(2)
    manifest = ModelManifest(name='flip_onnx_only', architecture='enet', task='panoptic',
                             input_height=HEIGHT, input_width=WIDTH, flip_test=True)
    network = build_model('enet', num_classes=19, panoptic=True).eval()
    out = str(tmp_path / 'p')
    export_model_package(network, manifest, out, save_weights=False)
    loaded_manifest, package_dir = load_model_package(out)
    assert loaded_manifest.weights_file is None and loaded_manifest.flip_test
    recovered = load_torch_network(package_dir, loaded_manifest).eval()
    image = torch.from_numpy(_image(loaded_manifest, seed=6))
    with torch.no_grad():
        expected = FusedSegmentationGraph(network, loaded_manifest).heads(image)
        got = FusedSegmentationGraph(recovered, loaded_manifest).heads(image)
    for name in ('semantic', 'center', 'offset'):
        torch.testing.assert_close(got[name], expected[name], rtol=1e-3, atol=1e-3)
