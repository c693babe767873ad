"""Weights recovered from an exported ONNX graph (BatchNorm folded) for fine-tuning."""

import numpy as np
import pytest

from seg_perception.export.onnx_export import export_model_package
from seg_perception.manifest import ModelManifest
from seg_perception.packages.onnx_weights import (
    load_weights_from_onnx,
    module_path_from_node_name,
    OnnxWeightsError,
)

torch = pytest.importorskip('torch')
pytest.importorskip('onnx')


def test_module_path_from_node_name():
    assert module_path_from_node_name('/network/encoder/stem/stem.0/Conv') == 'encoder.stem.0'
    assert module_path_from_node_name(
        '/network/encoder/low_level/low_level.1/block/block.2/block.2.0/Conv') == \
        'encoder.low_level.1.block.2.0'
    assert module_path_from_node_name('/network/aspp/project_branches/Conv') == \
        'aspp.project_branches'
    assert module_path_from_node_name('/other/head/Conv', root='network') == 'other.head'


def _trained_looking(network, seed):
    """Random BatchNorm statistics and affine parameters, so that folding them matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.2)
    return network.eval()


@pytest.mark.parametrize('architecture', ['deeplabv3plus_mobilenetv3', 'fcn_resnet18'])
def test_recovered_network_computes_what_the_graph_computes(architecture, tmp_path,
                                                            torch_one_thread):
    from seg_perception.models import build_model
    torch.manual_seed(0)
    height, width = 64, 128
    source = _trained_looking(build_model(architecture, num_classes=19, panoptic=True), 1)
    manifest = ModelManifest(name='x', architecture=architecture, task='panoptic',
                             input_height=height, input_width=width)
    export_model_package(source, manifest, str(tmp_path), save_weights=False)
    images = torch.randn(4, 3, height, width)

    torch.manual_seed(5)  # another initialisation
    target = build_model(architecture, num_classes=19, panoptic=True)
    result = load_weights_from_onnx(target, str(tmp_path / 'model.onnx'), images)
    assert result.convolutions == sum(isinstance(m, torch.nn.Conv2d) for m in target.modules())
    assert result.fresh_tensors == 0 and not result.unmatched_nodes
    assert target.training  # left as it was
    target.eval()
    with torch.no_grad():
        expected, actual = source(images), target(images)
    for key in ('semantic', 'center', 'offset'):
        np.testing.assert_allclose(actual[key].numpy(), expected[key].numpy(),
                                   rtol=1e-3, atol=1e-3)


def test_changed_head_and_other_architecture(tmp_path, torch_one_thread):
    from seg_perception.models import build_model
    source = build_model('fcn_resnet18', num_classes=19, panoptic=False).eval()
    manifest = ModelManifest(name='x', architecture='fcn_resnet18', task='semantic',
                             input_height=64, input_width=64)
    export_model_package(source, manifest, str(tmp_path), save_weights=False)
    onnx_path = str(tmp_path / 'model.onnx')
    images = torch.randn(2, 3, 64, 64)
    panoptic = build_model('fcn_resnet18', num_classes=19, panoptic=True)
    result = load_weights_from_onnx(panoptic, onnx_path, images)
    assert result.fresh_tensors > 0  # the instance head is new
    with pytest.raises(OnnxWeightsError, match='another architecture'):
        load_weights_from_onnx(build_model('unet', num_classes=19), onnx_path, images)
    (tmp_path / 'bad.onnx').write_bytes(b'not onnx')
    with pytest.raises(OnnxWeightsError, match='not a readable ONNX file'):
        load_weights_from_onnx(panoptic, str(tmp_path / 'bad.onnx'), images)
