"""Messages the node builds: vision_msgs detections (optional package) and camera_info copies.
"""

from __future__ import annotations

from typing import Any, List

from ..pipeline.outputs import DetectionBox


def vision_msgs() -> Any:
    """The vision_msgs message module, or None when it is not installed."""
    try:
        from vision_msgs import msg
    except ImportError:
        return None
    return msg


def detection_array(vision: Any, header: Any, boxes: List[DetectionBox]) -> Any:
    """A ``vision_msgs/Detection2DArray`` of ``boxes`` (vision_msgs 3.x and 4.x layouts).

    Args:
        vision: The ``vision_msgs.msg`` module.
        header: Copied to the array and every detection.
        boxes: From ``pipeline.outputs.detection_boxes``.
    """
    array = vision.Detection2DArray(header=header)
    for box in boxes:
        detection = vision.Detection2D(header=header)
        if hasattr(detection, 'id'):  # 4.x
            detection.id = str(box.id)
        center = detection.bbox.center
        point = center.position if hasattr(center, 'position') else center  # 4.x vs 3.x
        point.x, point.y = box.center_x, box.center_y
        detection.bbox.size_x, detection.bbox.size_y = box.width, box.height
        hypothesis = vision.ObjectHypothesisWithPose()
        target = hypothesis.hypothesis if hasattr(hypothesis, 'hypothesis') else hypothesis
        if hasattr(target, 'class_id'):
            target.class_id = box.class_name
        else:
            target.id = box.class_name
        target.score = box.score
        detection.results.append(hypothesis)
        array.detections.append(detection)
    return array


def copy_camera_info(msg: Any) -> Any:
    """A new ``sensor_msgs/CameraInfo`` with ``msg``'s calibration (header left empty)."""
    from sensor_msgs.msg import CameraInfo, RegionOfInterest
    roi = msg.roi
    return CameraInfo(
        height=msg.height, width=msg.width, distortion_model=msg.distortion_model,
        d=list(msg.d), k=list(msg.k), r=list(msg.r), p=list(msg.p),
        binning_x=msg.binning_x, binning_y=msg.binning_y,
        roi=RegionOfInterest(x_offset=roi.x_offset, y_offset=roi.y_offset, height=roi.height,
                             width=roi.width, do_rectify=roi.do_rectify))
