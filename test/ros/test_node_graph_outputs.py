"""The node loads its Segmenter with only the graph outputs its switches need."""

import os

import pytest

from seg_perception.pipeline.config import NodeConfig

pytest.importorskip('rclpy')
pytest.importorskip('onnx')

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO_ENET = os.path.join(ROOT, 'seg_perception', 'zoo', 'enet_panoptic')


@pytest.mark.parametrize('switches, confidence', [({}, False),
                                                  ({'publish_confidence': True}, True)])
def test_node_segmenter_computes_confidence_only_when_published(switches, confidence):
    from seg_perception.ros.segmentation import _load_segmenter
    config = NodeConfig.from_values({'model': ZOO_ENET, 'backend': 'onnxruntime',
                                     'threads': 1, **switches})
    with _load_segmenter(config) as segmenter:
        assert ('confidence' in segmenter.graph_outputs) is confidence
        assert ('graph pruned' in segmenter.backend.info.detail) is not confidence
