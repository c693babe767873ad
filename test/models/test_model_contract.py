"""The shared contract every registered model meets, semantic and panoptic.

For each architecture: the forward contract of the registry (shapes, dtypes), export with
the fused post-processing, the TensorRT 8.5 / 10.x parser check, and ONNX Runtime vs
PyTorch parity through the two real backends on the exported package.
"""

import numpy as np
import pytest

from seg_perception.export.tensorrt_check import check_tensorrt_compatibility
from seg_perception.manifest import ModelManifest
from seg_perception.models import build_model, list_models
from seg_perception.runtime.onnxruntime_backend import OnnxRuntimeBackend
from seg_perception.runtime.torch_backend import TorchBackend

torch = pytest.importorskip('torch')

# Instance grouping parity on realistic, well separated instances is in test_backends.py;
# here random heads at the default threshold check the whole graph on every architecture.


# The panoptic graph is the semantic one plus the instance heads and grouping: every
# architecture runs panoptic, and semantic too except on the ResNet-50/101 backbones, whose
# semantic head and post-processing are those of a cheaper architecture of the same family
# (and whose torchvision semantic packages test_import_torchvision checks against torchvision).
HEAVY_BACKBONES = ('resnet50', 'resnet101')
CASES = [(name, task) for name in list_models() for task in ('semantic', 'panoptic')
         if task == 'panoptic' or not name.endswith(HEAVY_BACKBONES)]


@pytest.mark.parametrize('name,task', CASES, ids=[f'{name}-{task}' for name, task in CASES])
def test_model_contract(name, task, exported_package):
    torch.set_num_threads(1)
    package = exported_package(name, task)
    manifest = ModelManifest.load(package)
    height, width = manifest.input_height, manifest.input_width

    network = build_model(name, num_classes=19, panoptic=task == 'panoptic').eval()
    with torch.no_grad():
        heads = network(torch.zeros(1, 3, height, width))
    assert heads['semantic'].shape == (1, 19, height, width)
    if task == 'panoptic':
        stride = network.instance_stride
        assert stride in (1, 2, 4, 8, 16, 32)
        assert heads['center'].shape == (1, 1, height // stride, width // stride)
        assert heads['offset'].shape == (1, 2, height // stride, width // stride)

    assert check_tensorrt_compatibility(manifest.onnx_path(package)) == []

    image = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    threshold = manifest.postprocess.center_threshold
    onnx_outputs = OnnxRuntimeBackend(manifest, package).run(image, threshold)
    torch_outputs = TorchBackend(manifest, package).run(image, threshold)
    assert set(onnx_outputs) == set(manifest.output_names) == set(torch_outputs)
    for output in manifest.output_names:
        assert onnx_outputs[output].dtype == torch_outputs[output].dtype
    assert np.mean(onnx_outputs['semantic'] == torch_outputs['semantic']) >= 0.999
    np.testing.assert_allclose(onnx_outputs['confidence'], torch_outputs['confidence'],
                               atol=1e-3)
    if task == 'panoptic':
        divisor = manifest.label_divisor
        assert np.mean(onnx_outputs['panoptic'] // divisor
                       == torch_outputs['panoptic'] // divisor) >= 0.999
        assert np.mean((onnx_outputs['instance'] > 0)
                       == (torch_outputs['instance'] > 0)) >= 0.999
