"""The node finds the engine ``build-engine`` made with non-default options (issue 27 item 3).

The node's ``engine_*`` parameters reach the TensorRT backend through
``NodeConfig.engine_options`` and ``create_backend``, with the graph outputs its ``publish_``
switches read (as ``ros/segmentation.py`` passes them; ``build-engine`` builds the node's
default outputs), so the same options give the same key and file; other options build a
file of their own and never overwrite the user's. Runs on the TensorRT / cuda-python
stand-ins.
"""

import glob
import os
import shutil

import fake_tensorrt
import numpy as np
import pytest

from seg_perception import cli
from seg_perception.manifest import ModelManifest
from seg_perception.pipeline.config import NodeConfig
from seg_perception.pipeline.graph_outputs import needed_graph_outputs
from seg_perception.runtime.base import BackendError
from seg_perception.runtime.select import create_backend

cv2 = pytest.importorskip('cv2')
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO_ENET = os.path.join(ROOT, 'seg_perception', 'zoo', 'enet_panoptic')


@pytest.fixture
def trt(monkeypatch):
    return fake_tensorrt.install(monkeypatch)


@pytest.fixture
def package(tmp_path):
    return shutil.copytree(ZOO_ENET, str(tmp_path / 'enet'))


def _node_backend(package, **parameters):
    """The backend the node would create with these parameters."""
    config = NodeConfig.from_values({'backend': 'tensorrt', **parameters})
    backend, _ = create_backend(package, ModelManifest.load(package), backend=config.backend,
                                device=config.device, precision=config.precision,
                                **config.engine_options(),
                                outputs=needed_graph_outputs(config.enabled_outputs))
    return backend


def _engines(package):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(package, '*.engine')))


def test_node_uses_the_engine_built_with_the_same_options(trt, package, capsys):
    assert cli.main(['build-engine', package, '--fp32-layers', '/network/decoder*']) == 0
    built = _engines(package)
    assert len(built) == 1 and len(trt.builds) == 1
    backend = _node_backend(package, engine_fp32_layers='/network/decoder*',
                            allow_engine_build=False)
    assert backend.decision.use and os.path.basename(backend.engine_path) == built[0]
    backend.close()
    assert len(trt.builds) == 1

    # Without the option, no-build mode says which engine is there and how it differs.
    with pytest.raises(BackendError) as raised:
        _node_backend(package, allow_engine_build=False)
    message = str(raised.value)
    assert f'other engines of this model here: {built[0]} (fp32_layers: engine built for ' \
           "['/network/decoder*', '/postprocess/'], wanted ['/postprocess/'])" in message
    # With builds allowed it builds its own engine beside the user's, which stays.
    _node_backend(package).close()
    assert len(_engines(package)) == 2 and built[0] in _engines(package)
    assert len(trt.builds) == 2


def test_node_int8_takes_its_calibration_images(trt, package, tmp_path):
    frames = tmp_path / 'frames'
    frames.mkdir()
    for index in range(2):
        assert cv2.imwrite(str(frames / f'{index}.png'), np.full((16, 16, 3), 60 * index,
                                                                 np.uint8))
    with pytest.raises(ValueError, match='engine_calib_images_dir'):
        _node_backend(package, precision='int8')
    backend = _node_backend(package, precision='int8', engine_calib_images_dir=str(frames))
    backend.close()
    assert trt.builds[-1]['batches'] == 2 and 'INT8' in trt.builds[-1]['flags']
    assert backend.key.calibration_sha256 and '.int8.b1.' in backend.engine_path
