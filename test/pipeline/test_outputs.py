"""pipeline/outputs.py: dropping small instances, scaling CameraInfo to the output size and
detection boxes (with their vision_msgs array, where rclpy is available)."""

from types import SimpleNamespace

import numpy as np
import pytest

from seg_perception.labels import cityscapes
from seg_perception.pipeline.outputs import drop_small_instances, scale_camera_info


def _result_with_instances():
    from seg_perception.segmenter import SegmentationResult, SegmentationTiming
    semantic = np.full((20, 20), 0, np.uint8)
    semantic[:10, :10] = 13
    semantic[15:, 15:] = 11
    instance = np.zeros((20, 20), np.int32)
    instance[:10, :10] = 1     # 100 px
    instance[15:, 15:] = 2     # 25 px
    panoptic = (semantic.astype(np.int32) * 1000 + instance).astype(np.int32)
    return SegmentationResult(semantic, np.ones((20, 20), np.float32), instance, panoptic,
                              SegmentationTiming(), (20, 20), (20, 20), 1000, (11, 13))


def test_drop_small_instances_keeps_class_and_scales_area():
    result = _result_with_instances()
    assert drop_small_instances(result, 0, (20, 20)) is result
    assert drop_small_instances(result, 25, (20, 20)) is result
    dropped = drop_small_instances(result, 26, (20, 20))
    assert set(np.unique(dropped.instance)) == {0, 1}
    assert (dropped.panoptic[15:, 15:] == 11000).all()
    assert (dropped.panoptic[:10, :10] == 13001).all()
    # Network 10x10 vs output 20x20: 7 network pixels = 28 output pixels > 25.
    assert set(np.unique(drop_small_instances(result, 7, (10, 10)).instance)) == {0, 1}
    assert (result.instance[15:, 15:] == 2).all()  # input untouched


def test_scale_camera_info_to_output_size():
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)
    info = SimpleNamespace(width=1024, height=512, roi=roi,
                           k=[800.0, 0.0, 512.0, 0.0, 790.0, 256.0, 0.0, 0.0, 1.0],
                           p=[800.0, 0.0, 512.0, -40.0, 0.0, 790.0, 256.0, 0.0, 0.0, 0.0,
                              1.0, 0.0])
    scale_camera_info(info, (128, 256))
    assert (info.width, info.height) == (256, 128)
    np.testing.assert_allclose(info.k, [200, 0, 128, 0, 197.5, 64, 0, 0, 1])
    np.testing.assert_allclose(info.p, [200, 0, 128, -10, 0, 197.5, 64, 0, 0, 0, 1, 0])
    uncalibrated = SimpleNamespace(width=0, height=0, k=[0.0] * 9, p=[0.0] * 12, roi=roi)
    assert scale_camera_info(uncalibrated, (128, 256)).width == 256


def test_detection_boxes_and_vision_msgs_array():
    from seg_perception.pipeline.outputs import detection_boxes
    result = _result_with_instances()
    boxes = sorted(detection_boxes(result, cityscapes().names), key=lambda box: box.id)
    assert [(box.id, box.class_name) for box in boxes] == [(11002, 'person'), (13001, 'car')]
    person = boxes[0]
    assert (person.center_x, person.center_y, person.width, person.height) == (17.5, 17.5,
                                                                                5.0, 5.0)
    pytest.importorskip('rclpy')
    from seg_perception.ros.messages import detection_array

    class Detection2DArray:  # vision_msgs 4.x layout
        def __init__(self, header=None):
            self.header, self.detections = header, []

    class Detection2D:
        def __init__(self, header=None):
            self.header, self.id, self.results = header, '', []
            self.bbox = SimpleNamespace(center=SimpleNamespace(
                position=SimpleNamespace(x=0.0, y=0.0), theta=0.0), size_x=0.0, size_y=0.0)

    class ObjectHypothesisWithPose:
        def __init__(self):
            self.hypothesis = SimpleNamespace(class_id='', score=0.0)

    vision = SimpleNamespace(Detection2DArray=Detection2DArray, Detection2D=Detection2D,
                             ObjectHypothesisWithPose=ObjectHypothesisWithPose)
    array = detection_array(vision, 'header', boxes)
    assert array.header == 'header' and len(array.detections) == 2
    car = array.detections[1]
    assert car.id == '13001' and car.header == 'header'
    assert (car.bbox.center.position.x, car.bbox.size_x) == (5.0, 10.0)
    assert car.results[0].hypothesis.class_id == 'car'
