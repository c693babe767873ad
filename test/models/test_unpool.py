"""Max-unpooling by mask (``models.unpool``) equals torch's MaxPool2d indices + MaxUnpool2d,
ties included, eagerly and through ONNX Runtime, in ops TensorRT parses; and
``models.pytorch_enet`` has PyTorch-ENet's state dict and predictions (fixture:
``test/fixtures/pytorch_enet``, made by ``scripts/make_pytorch_enet_fixture.py``)."""

import io
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.models import build_model
from seg_perception.models.unpool import max_pool_with_mask, max_unpool

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'fixtures', 'pytorch_enet')
pytestmark = pytest.mark.usefixtures('torch_one_thread')


def _reference(features: torch.Tensor, values: torch.Tensor):
    pooled, indices = nn.MaxPool2d(2, 2, return_indices=True)(features)
    return pooled, nn.MaxUnpool2d(2)(values, indices, output_size=features.shape[-2:])


def _inputs():
    """(name, features) with and without ties; every window of 'ties' holds equal maxima
    somewhere, 'constant' is all ties, 'signed_zeros' mixes -0.0 and 0.0."""
    generator = torch.Generator().manual_seed(0)
    random = torch.randn((2, 5, 12, 16), generator=generator)
    ties = torch.randint(0, 3, (2, 5, 12, 16), generator=generator).float()
    constant = torch.full((1, 3, 8, 8), 0.5)
    signs = torch.randint(0, 2, (1, 4, 8, 8), generator=generator).bool()
    signed_zeros = torch.where(signs, torch.tensor(0.0), torch.tensor(-0.0))
    infinite = torch.full((1, 2, 4, 4), float('-inf'))
    relu_like = torch.relu(torch.randn((2, 8, 16, 16), generator=generator))  # half zeros
    return [('random', random), ('ties', ties), ('constant', constant),
            ('signed_zeros', signed_zeros), ('minus_infinity', infinite),
            ('relu_like', relu_like)]


@pytest.mark.parametrize('name,features', _inputs(), ids=[n for n, _ in _inputs()])
def test_mask_unpooling_equals_maxpool_indices_and_maxunpool(name, features):
    values = torch.randn(features.shape[:2] + (features.shape[2] // 2, features.shape[3] // 2),
                         generator=torch.Generator().manual_seed(1))
    pooled, mask = max_pool_with_mask(features)
    expected_pooled, expected = _reference(features, values)
    assert torch.equal(pooled, expected_pooled)
    assert mask.dtype == torch.bool and mask.shape == features.shape
    per_window = mask.float().reshape(*mask.shape[:2], mask.shape[2] // 2, 2,
                                      mask.shape[3] // 2, 2).sum(dim=(3, 5))
    assert torch.all(per_window == 1), 'exactly one position per 2x2 window'
    unpooled = max_unpool(values, mask)
    assert torch.equal(unpooled, expected)
    assert not torch.signbit(unpooled[unpooled == 0]).any(), 'zeros are +0 as in MaxUnpool2d'


def test_ties_resolve_to_the_first_maximum_in_row_major_order():
    windows = torch.tensor([[[[1.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 3.0],
                              [1.0, 1.0, 2.0, 2.0, 0.0, 5.0, 3.0, 3.0]]]])
    _, mask = max_pool_with_mask(windows)
    _, indices = nn.MaxPool2d(2, 2, return_indices=True)(windows)
    # Top-left of the all-equal window, top-right of (0, 2 / 2, 2), bottom-right of the single
    # maximum, top-left again of the all-3 window: the flat indices torch returns.
    assert indices.flatten().tolist() == [0, 3, 13, 6]
    assert mask.flatten().nonzero().flatten().tolist() == [0, 3, 6, 13]


def test_odd_sizes_and_mismatched_masks_are_refused():
    with pytest.raises(ValueError, match='even size'):
        max_pool_with_mask(torch.zeros(1, 1, 6, 7))
    _, mask = max_pool_with_mask(torch.zeros(1, 2, 6, 8))
    with pytest.raises(ValueError, match='twice the size'):
        max_unpool(torch.zeros(1, 2, 4, 4), mask)


class _PoolUnpool(nn.Module):
    """features (N, C, H, W) -> pooled (N, C, H/2, W/2), unpooled 2 * pooled + 1 at the
    maxima (other values than the pooled ones, as in ENet)."""

    def forward(self, features):
        pooled, mask = max_pool_with_mask(features)
        return pooled, max_unpool(2.0 * pooled + 1.0, mask)


def _export(module: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=17,
                          input_names=['features'], output_names=['pooled', 'unpooled'])
    return buffer.getvalue()


def test_onnx_runtime_equals_torch_reference_and_tensorrt_parses_it():
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    from seg_perception.export.tensorrt_check import check_tensorrt_compatibility
    shape = (2, 5, 12, 16)
    model_bytes = _export(_PoolUnpool().eval(), torch.zeros(shape))
    model = onnx.load_from_string(model_bytes)
    op_types = {node.op_type for node in model.graph.node}
    assert 'MaxUnpool' not in op_types
    assert all(len(n.output) == 1 for n in model.graph.node if n.op_type == 'MaxPool')
    assert check_tensorrt_compatibility(model) == []
    session = ort.InferenceSession(model_bytes, providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(2)
    for features in (torch.randn(shape, generator=generator),
                     torch.randint(0, 3, shape, generator=generator).float(),
                     torch.zeros(shape)):
        pooled, unpooled = session.run(None, {'features': features.numpy()})
        values = 2.0 * nn.functional.max_pool2d(features, 2) + 1.0
        expected_pooled, expected = _reference(features, values)
        np.testing.assert_array_equal(pooled, expected_pooled.numpy())
        np.testing.assert_array_equal(unpooled, expected.numpy())


def _fixture_checkpoint():
    return torch.load(os.path.join(FIXTURE, 'enet_cityscapes_random.pth'), map_location='cpu',
                      weights_only=False)['state_dict']


def test_state_dict_keys_and_shapes_are_pytorch_enets():
    theirs = _fixture_checkpoint()
    ours = build_model('pytorch_enet', num_classes=19, output_channels=20,
                       class_channels=list(range(1, 20))).state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.items()]
    panoptic = build_model('pytorch_enet', num_classes=19, panoptic=True, output_channels=20,
                           class_channels=list(range(1, 20))).state_dict()
    assert {k for k in panoptic if k not in ours} == {k for k in panoptic
                                                       if k.startswith('instance.')}


def test_eager_prediction_equals_pytorch_enets():
    """Eager ``pytorch_enet`` on their input (RGB / 255) against their model's argmax over
    the 19 real classes: equal except at float near-ties (the fixture holds the margin)."""
    reference = np.load(os.path.join(FIXTURE, 'reference.npz'))
    network = build_model('pytorch_enet', num_classes=19, output_channels=20,
                          class_channels=list(range(1, 20))).eval()
    network.load_state_dict(_fixture_checkpoint(), strict=True)
    image = torch.from_numpy(reference['image']).permute(2, 0, 1)[None].float().div(255)
    with torch.no_grad():
        logits = network(image)['semantic'][0]
    assert logits.shape[0] == 19
    prediction = logits.argmax(0).numpy()
    differs = prediction != reference['real_argmax']
    assert differs.mean() <= 0.001
    assert np.all(reference['margin'][differs].astype(np.float32) < 1e-3)


def test_class_channels_select_and_order_the_logits():
    torch.manual_seed(0)
    full = build_model('pytorch_enet', num_classes=4).eval()
    picked = build_model('pytorch_enet', num_classes=3, output_channels=4,
                         class_channels=[3, 0, 2]).eval()
    picked.load_state_dict(full.state_dict())
    images = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(picked(images)['semantic'], full(images)['semantic'][:, [3, 0, 2]])
    with pytest.raises(ValueError, match='distinct channels'):
        build_model('pytorch_enet', num_classes=2, output_channels=4, class_channels=[1, 1])
