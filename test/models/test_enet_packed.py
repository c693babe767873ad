"""ENet's packed forward (the export graph's form) and the weights read back from it."""

import pytest
import torch

from seg_perception.models.enet import enet


def test_packed_forward_is_the_full_conv_packed():
    torch.manual_seed(0)
    network = enet(19, panoptic=True).eval()
    images = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        plain = network(images)
        packed = network(images, packed_semantic=True)
    assert set(packed) == {'semantic_packed', 'center', 'offset'}
    batch, classes, height, width = plain['semantic'].shape
    image = packed['semantic_packed'].reshape(batch, height // 2, width // 2, 2, 2, classes)
    image = image.permute(0, 5, 1, 3, 2, 4).reshape(batch, classes, height, width)
    torch.testing.assert_close(image, plain['semantic'], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed['center'], plain['center'])


def test_weights_come_back_from_a_packed_export(tmp_path):
    """The exported graph holds the full conv only as a (16, 4C) MatMul weight and a (C,)
    bias; ``load_weights_from_onnx`` restores the (16, C, 2, 2) kernel exactly."""
    pytest.importorskip('onnx')
    from seg_perception.packages.onnx_weights import load_weights_from_onnx
    from seg_perception.tools.benchmark import export_random_package
    package = export_random_package('enet', 'semantic', 64, 128, str(tmp_path / 'pkg'))
    torch.manual_seed(0)  # export_random_package's weights
    original = enet(19, panoptic=False)
    torch.manual_seed(5)
    restored = enet(19, panoptic=False)
    assert not torch.equal(restored.full_conv.weight, original.full_conv.weight)
    result = load_weights_from_onnx(restored, f'{package}/model.onnx')
    assert result.fresh_tensors == 0
    torch.testing.assert_close(restored.full_conv.weight, original.full_conv.weight,
                               rtol=0, atol=0)
    torch.testing.assert_close(restored.full_conv.bias, original.full_conv.bias,
                               rtol=0, atol=0)
