"""Architectures: registry, forward contract, panoptic heads, ONNX-friendliness, complexity."""

import io
import warnings

import pytest
import torch
from torch import nn

from seg_perception.models import build_model, get_model_spec, list_models, UnknownModelError
from seg_perception.models.complexity import (
    complexity_table,
    count_gflops,
    count_parameters,
    format_markdown,
)
from seg_perception.models.heads import InstanceHead, upsample_instance_outputs

HEIGHT, WIDTH = 64, 128
NUM_CLASSES = 5
EXPECTED_NAMES = {
    'enet', 'unet',
    'deeplabv3_mobilenetv3', 'deeplabv3plus_mobilenetv3',
    'deeplabv3_resnet18', 'deeplabv3plus_resnet18',
    'deeplabv3_resnet50', 'deeplabv3plus_resnet50',
    'fcn_resnet18', 'fcn_resnet50', 'pspnet_resnet18', 'pspnet_resnet50',
}


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_expected_architecture_is_registered():
    assert EXPECTED_NAMES <= set(list_models())


@pytest.mark.parametrize('panoptic', [False, True], ids=['semantic', 'panoptic'])
@pytest.mark.parametrize('name', list_models())
def test_forward_contract_and_determinism(name, panoptic):
    torch.manual_seed(0)
    model = build_model(name, num_classes=NUM_CLASSES, panoptic=panoptic).eval()
    spec = get_model_spec(name)
    assert model.num_classes == NUM_CLASSES
    assert model.panoptic is panoptic
    assert model.size_divisor == spec.size_divisor
    assert HEIGHT % spec.size_divisor == 0 and WIDTH % spec.size_divisor == 0
    images = torch.randn(2, 3, HEIGHT, WIDTH)
    with torch.no_grad():
        first = model(images)
        second = model(images)
    expected = {'semantic': NUM_CLASSES}
    if panoptic:
        expected.update(center=1, offset=2)
    assert set(first) == set(expected)
    for key, channels in expected.items():
        stride = 1 if key == 'semantic' else model.instance_stride
        assert first[key].shape == (2, channels, HEIGHT // stride, WIDTH // stride), key
        assert first[key].dtype == torch.float32, key
        assert torch.isfinite(first[key]).all(), key
        assert torch.equal(first[key], second[key]), f'{key} differs between two eval passes'
    # The two images differ, so must their logits (catches heads ignoring the input).
    assert not torch.equal(first['semantic'][0], first['semantic'][1])


@pytest.mark.parametrize('name', list_models())
def test_input_not_multiple_of_size_divisor_is_rejected(name):
    divisor = get_model_spec(name).size_divisor
    with torch.device('meta'):  # the check runs before any arithmetic; skip allocating weights
        model = build_model(name, num_classes=NUM_CLASSES).eval()
        images = torch.zeros(1, 3, HEIGHT + divisor // 2, WIDTH)
    with torch.no_grad(), pytest.raises(ValueError, match=f'size_divisor {divisor}'):
        model(images)


def test_wrong_channel_count_is_rejected():
    model = build_model('enet', num_classes=NUM_CLASSES).eval()
    with torch.no_grad(), pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        model(torch.zeros(1, 1, HEIGHT, WIDTH))


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownModelError) as error:
        build_model('segformer_b9')
    message = str(error.value)
    assert 'segformer_b9' in message
    for name in list_models():
        assert name in message


@pytest.mark.parametrize('name', ['enet', 'deeplabv3plus_mobilenetv3', 'pspnet_resnet18',
                                  'fcn_resnet18', 'unet'])
def test_trains_with_batch_size_one(name):
    """Pooling branches (ASPP image pooling, PSP bin 1) must not need batch statistics."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=NUM_CLASSES, panoptic=True).train()
    outputs = model(torch.randn(1, 3, HEIGHT, WIDTH))
    loss = sum(output.square().mean() for output in outputs.values())
    loss.backward()
    gradients = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in gradients)


def test_enet_parameter_count_matches_paper():
    parameters = count_parameters(build_model('enet', num_classes=19))
    assert abs(parameters - 0.37e6) <= 0.1 * 0.37e6, parameters


def test_shipped_deeplabv3plus_mobilenetv3_fits_the_size_budget():
    model = build_model('deeplabv3plus_mobilenetv3', num_classes=19, panoptic=True)
    assert count_parameters(model) <= 5_000_000


def test_instance_head_stays_at_feature_stride_with_offsets_in_input_pixels():
    head = InstanceHead(in_channels=4, stride=4).eval()
    nn.init.zeros_(head.predict.weight)
    with torch.no_grad():
        head.predict.bias.copy_(torch.tensor([0.25, 1.5, -2.0]))
        outputs = head(torch.randn(1, 4, 3, 5))
    assert outputs['center'].shape == (1, 1, 3, 5)
    assert outputs['offset'].shape == (1, 2, 3, 5)
    assert torch.allclose(outputs['center'], torch.full((1, 1, 3, 5), 0.25))
    # 1.5 / -2 feature-map pixels are 6 / -8 input pixels at stride 4.
    assert torch.allclose(outputs['offset'][0, 0], torch.full((3, 5), 6.0))
    assert torch.allclose(outputs['offset'][0, 1], torch.full((3, 5), -8.0))
    upsampled = upsample_instance_outputs(outputs, 12, 20)
    assert upsampled['center'].shape == (1, 1, 12, 20)
    assert torch.allclose(upsampled['offset'][0, 1], torch.full((12, 20), -8.0))
    with pytest.raises(ValueError, match='not an integer downscale'):
        upsample_instance_outputs(outputs, 12, 21)


def test_prelu_is_exported_as_depthwise_convolutions_with_the_same_function():
    from seg_perception.models.layers import DepthwisePReLU, export_activations
    torch.manual_seed(0)
    model = build_model('enet', num_classes=NUM_CLASSES).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.PReLU):
                module.weight.uniform_(-0.5, 1.5)  # slopes outside [0, 1] too
    rewritten = export_activations(model)
    assert rewritten is not model
    assert not any(isinstance(m, nn.PReLU) for m in rewritten.modules())
    assert sum(isinstance(m, DepthwisePReLU) for m in rewritten.modules()) == \
        sum(isinstance(m, nn.PReLU) for m in model.modules()) > 60
    images = torch.randn(1, 3, HEIGHT, WIDTH)
    with torch.no_grad():
        expected, actual = model(images)['semantic'], rewritten(images)['semantic']
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
    plain = build_model('unet', num_classes=NUM_CLASSES)
    assert export_activations(plain) is plain  # nothing to rewrite, nothing copied


@pytest.mark.parametrize('in_channels,out_channels,bias', [(16, 19, True), (32, 8, False)])
def test_2x2_transposed_conv_is_exported_as_1x1_conv_and_depth_to_space(in_channels,
                                                                          out_channels, bias):
    """Same weights, same function on random inputs, in torch and in ONNX Runtime."""
    onnx = pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    from seg_perception.models.layers import DepthToSpaceConvTranspose, export_activations
    torch.manual_seed(0)
    transposed = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=bias).eval()
    rewritten = export_activations(nn.Sequential(transposed), depth_to_space=True)
    assert isinstance(rewritten[0], DepthToSpaceConvTranspose)
    features = torch.randn(2, in_channels, 7, 11) * 3
    with torch.no_grad():
        expected, actual = transposed(features), rewritten(features)
    assert actual.shape == (2, out_channels, 14, 22)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(rewritten, (features,), buffer, opset_version=17, dynamo=False,
                          input_names=['x'], output_names=['y'])
    ops = [n.op_type for n in onnx.load_from_string(buffer.getvalue()).graph.node]
    assert 'ConvTranspose' not in ops and 'DepthToSpace' in ops, ops
    session = onnxruntime.InferenceSession(buffer.getvalue(),
                                           providers=['CPUExecutionProvider'])
    torch.testing.assert_close(torch.from_numpy(session.run(None, {'x': features.numpy()})[0]),
                               expected, atol=1e-5, rtol=1e-5)
    # Other transposed convolutions stay as they are, and so do all without the flag.
    other = nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1))
    assert export_activations(other, depth_to_space=True) is other
    assert export_activations(nn.Sequential(transposed))[0] is not rewritten[0]
    assert isinstance(export_activations(nn.Sequential(transposed))[0], nn.ConvTranspose2d)


@pytest.mark.parametrize('name', ['enet', 'pspnet_resnet18', 'deeplabv3plus_mobilenetv3'])
def test_onnx_export_is_static_and_tensorrt_friendly(name):
    onnx = pytest.importorskip('onnx')
    model = build_model(name, num_classes=NUM_CLASSES, panoptic=True).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (torch.zeros(1, 3, HEIGHT, WIDTH),), buffer, opset_version=17,
                          dynamo=False, input_names=['image'],
                          output_names=['semantic', 'center', 'offset'])
    # No folded activation-sized constants: the file is essentially the weights.
    assert len(buffer.getvalue()) < 4 * count_parameters(model) + 500_000
    graph = onnx.load_from_string(buffer.getvalue()).graph
    op_types = {node.op_type for node in graph.node}
    assert not op_types & {'MaxUnpool', 'Shape', 'Where', 'ConstantOfShape'}, op_types
    for node in graph.node:
        if node.op_type == 'MaxPool':
            assert len(node.output) == 1, 'MaxPool must not output indices'
        if node.op_type == 'Resize':
            modes = {a.s.decode() for a in node.attribute if a.name == 'mode'}
            assert modes <= {'linear', 'nearest'}, modes
    for output in graph.output:
        dims = [d.dim_value for d in output.type.tensor_type.shape.dim]
        assert all(d > 0 for d in dims), (output.name, dims)
        assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_count_gflops_is_two_times_macs():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    macs = 8 * 3 * 9 * 4 * 6
    assert count_gflops(conv, 4, 6) == pytest.approx(2 * macs / 1e9)
    assert conv.training, 'count_gflops must restore the training flag'
    assert count_parameters(conv) == 8 * 3 * 9


def test_complexity_table_rows_and_markdown():
    rows = complexity_table(360, 640, names=['enet'])
    assert [(row.name, row.task) for row in rows] == [('enet', 'semantic'), ('enet', 'panoptic')]
    semantic, panoptic = rows
    # ENet paper: 3.83 GFLOPs at 640x360.
    assert 3.0 < semantic.gflops < 4.2
    assert semantic.gflops < panoptic.gflops < 1.25 * semantic.gflops
    assert semantic.parameters == count_parameters(build_model('enet', num_classes=19))
    table = format_markdown(rows)
    assert table.splitlines()[0] == '| model | task | params (M) | GFLOPs @640x360 |'
    assert '| enet | semantic | 0.35 |' in table


def test_complexity_table_rejects_bad_size():
    with pytest.raises(ValueError, match='size_divisor 64'):
        complexity_table(360, 640, names=['pspnet_resnet18'])
