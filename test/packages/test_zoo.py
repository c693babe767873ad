"""The shipped zoo: every model loads by name, verifies, runs, and stays within budget."""

import os

import numpy as np
import pytest

from seg_perception import Segmenter
from seg_perception.export.tensorrt_check import check_tensorrt_compatibility
from seg_perception.packages.loading import load_model_package
from seg_perception.packages.zoo import list_zoo, resolve_model, UnknownZooModelError, ZOO_DIR

EXPECTED = ('deeplabv3plus_mobilenetv3_panoptic', 'enet_panoptic')
ZOO_BUDGET_BYTES = 25_000_000


def test_the_two_required_models_ship():
    assert set(EXPECTED) <= set(list_zoo())


def test_total_shipped_size_is_within_budget():
    total = sum(os.path.getsize(os.path.join(root, name))
                for root, _, names in os.walk(ZOO_DIR) for name in names)
    assert total <= ZOO_BUDGET_BYTES, f'zoo is {total / 1e6:.1f} MB'


@pytest.mark.parametrize('name', EXPECTED)
def test_zoo_model_is_a_verified_panoptic_package_with_a_card(name):
    manifest, directory = load_model_package(resolve_model(name))  # checks the sha256
    assert manifest.is_panoptic
    assert manifest.info['trained_by'] == 'seg-perception train'
    card = open(os.path.join(directory, 'MODEL_CARD.md')).read()
    assert f'network input {manifest.input_width}x{manifest.input_height}' in card[:800]
    for words in ('## Training', 'Held-out test', '## FP16', '## Latency'):
        assert words in card
    assert check_tensorrt_compatibility(manifest.onnx_path(directory)) == []


def test_enet_zoo_model_segments_a_street(tmp_path):
    from seg_perception.data.synthetic.generator import SceneGenerator
    frame = SceneGenerator(640, 320, seed=4242).generate(0)
    segmenter = Segmenter.from_zoo('enet_panoptic', backend='onnxruntime')
    result = segmenter.segment(frame.image)
    assert result.semantic.shape == (320, 640)
    # Under-trained, but far better than chance (1/19) on road-dominated scenes.
    assert np.mean(result.semantic == frame.semantic) > 0.4


@pytest.mark.parametrize('name', EXPECTED)
def test_zoo_weights_fit_the_architecture_and_agree_with_its_onnx(name):
    """The torch backend and fine-tuning read the shipped weights.pt, or recover the weights
    from model.onnx where none ships (DeepLab): either must load into today's architecture
    and give what the shipped graph gives."""
    from seg_perception.data.synthetic.generator import SceneGenerator
    frame = SceneGenerator(1024, 512, seed=4243).generate(0)
    with Segmenter.from_zoo(name, backend='torch', device='cpu') as torch_run, \
            Segmenter.from_zoo(name, backend='onnxruntime') as onnx_run:
        from_torch, from_onnx = torch_run.segment(frame.image), onnx_run.segment(frame.image)
    assert np.mean(from_torch.semantic == from_onnx.semantic) >= 0.999
    assert np.mean(from_torch.panoptic // 1000 == from_onnx.panoptic // 1000) >= 0.999


def test_unknown_zoo_name_lists_the_available_ones():
    with pytest.raises(UnknownZooModelError, match='enet_panoptic'):
        resolve_model('fcn_imaginary')
    with pytest.raises(UnknownZooModelError, match='does not exist'):
        resolve_model('./no/such/package')


def test_models_command_lists_each_zoo_model_with_its_network_size(capsys):
    from seg_perception.cli import main
    assert main(['models']) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in EXPECTED:
        manifest, _ = load_model_package(resolve_model(name))
        line = next(line for line in lines if line.strip().startswith(name + ' '))
        assert f'network input {manifest.input_width}x{manifest.input_height}' in line
        assert manifest.architecture in line
