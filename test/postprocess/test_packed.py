"""ENet's packed logits (``models.layers.packed_transposed_conv`` -> ``postprocess.packed``):
the same function as the transposed convolution + plain post-processing, eager and exported,
and the exported graph's weights can still be read back."""

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seg_perception.models.layers import packed_transposed_conv
from seg_perception.postprocess.fused import FusedPostprocess
from seg_perception.postprocess.packed import (
    check_packed_shape,
    packed_class_and_confidence,
    plain_class_and_confidence,
    unpack_blocks,
)

THINGS = tuple(range(11, 19))


def transposed_conv(in_channels=16, classes=19, bias=True, seed=0):
    torch.manual_seed(seed)
    layer = torch.nn.ConvTranspose2d(in_channels, classes, 2, stride=2, bias=bias)
    with torch.no_grad():
        layer.weight.normal_(0.0, 1.0)
        if bias:
            layer.bias.normal_(0.0, 1.0)
    return layer.eval()


def packed_to_image(packed, height, width):
    """(B, H/2*W/2*4, C) -> (B, C, H, W), written independently of ``unpack_blocks``."""
    batch, _, classes = packed.shape
    blocks = packed.reshape(batch, height // 2, width // 2, 2, 2, classes)
    return blocks.permute(0, 5, 1, 3, 2, 4).reshape(batch, classes, height, width)


@pytest.mark.parametrize('bias', [True, False])
def test_packed_layer_holds_the_transposed_convolution(bias):
    layer = transposed_conv(bias=bias)
    features = torch.randn(2, 16, 6, 10)
    with torch.no_grad():
        expected = layer(features)
        packed = packed_transposed_conv(layer, features)
    assert packed.shape == (2, 6 * 10 * 4, 19)
    torch.testing.assert_close(packed_to_image(packed, 12, 20), expected, rtol=1e-5, atol=1e-5)


def test_unpack_blocks_places_each_pixel():
    values = torch.arange(2 * 3 * 4 * 4).reshape(2, 3 * 4 * 4)
    image = unpack_blocks(values, 6, 8)
    # Row ((i * w + j) * 2 + a) * 2 + b is pixel (2i + a, 2j + b).
    for batch in range(2):
        for i in range(3):
            for j in range(4):
                for a in range(2):
                    for b in range(2):
                        row = ((i * 4 + j) * 2 + a) * 2 + b
                        assert image[batch, 2 * i + a, 2 * j + b] == values[batch, row]


def test_packed_and_plain_give_the_same_class_and_confidence():
    torch.manual_seed(1)
    packed = torch.randn(2, 8 * 16 * 4, 19) * 4.0
    best, confidence = packed_class_and_confidence(packed, 16, 32)
    plain_best, plain_confidence = plain_class_and_confidence(packed_to_image(packed, 16, 32))
    assert torch.equal(best, plain_best)
    torch.testing.assert_close(confidence, plain_confidence, rtol=1e-6, atol=1e-7)
    softmax_max = torch.softmax(packed_to_image(packed, 16, 32), dim=1).amax(dim=1)
    torch.testing.assert_close(confidence, softmax_max, rtol=1e-5, atol=1e-6)


def test_a_wrongly_shaped_packed_tensor_is_refused():
    with pytest.raises(ValueError, match=r'packed semantic logits must be \(B, 128, 19\)'):
        check_packed_shape(torch.zeros(1, 19, 8, 16), 19, 8, 16)
    module = FusedPostprocess(19, THINGS, panoptic=False, height=8, width=16,
                              packed_semantic=True)
    with pytest.raises(ValueError, match='packed semantic logits'):
        module(torch.zeros(1, 127, 19))


def _export(module, args, names):
    stream = io.BytesIO()
    torch.onnx.export(module, args, stream, input_names=names, opset_version=17,
                      dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    data = stream.getvalue()
    return onnx.load_from_string(data), ort.InferenceSession(
        data, options, providers=['CPUExecutionProvider'])


@pytest.mark.parametrize('panoptic', [False, True])
def test_exported_packed_graph_equals_the_plain_graph(panoptic):
    """Both FusedPostprocess forms, exported, on the same logits: pixel-equal maps."""
    height, width = 32, 64
    torch.manual_seed(2)
    packed = torch.randn(1, (height // 2) * (width // 2) * 4, 19) * 3.0
    image = packed_to_image(packed, height, width).contiguous()
    heads = ()
    if panoptic:
        center = torch.rand(1, 1, height // 4, width // 4)
        offset = torch.randn(1, 2, height // 4, width // 4) * 4.0
        heads = (center, offset, torch.tensor([0.1]))
    names = ['semantic_logits', 'center', 'offset', 'center_threshold'][:1 + len(heads)]
    results = []
    for is_packed, logits in ((False, image), (True, packed)):
        module = FusedPostprocess(19, THINGS, panoptic=panoptic, height=height, width=width,
                                  instance_stride=4, packed_semantic=is_packed).eval()
        model, session = _export(module, (logits,) + heads, names)
        feeds = dict(zip(names, (t.numpy() for t in (logits,) + heads)))
        results.append(session.run(None, feeds))
        if is_packed:
            # The class decision reduces the last axis (the plain form's is axis 1).
            axes = {a.i for n in model.graph.node if n.op_type == 'ArgMax'
                    for a in n.attribute if a.name == 'axis'}
            assert axes == {2}
    for plain, packed_output in zip(*results):
        if plain.dtype == np.float32:
            np.testing.assert_allclose(packed_output, plain, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(packed_output, plain)
