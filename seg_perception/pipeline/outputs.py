"""Per-frame output helpers of the node that need no ROS.

``drop_small_instances`` applies the node's run-time ``min_instance_area``;
``scale_camera_info`` rescales a ``sensor_msgs/CameraInfo``-like message to the output size;
``detection_boxes`` lists the instances for the ``detections`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, List, Sequence, Tuple

import numpy as np

from ..segmenter import SegmentationResult


def drop_small_instances(result: SegmentationResult, min_area_network: int,
                         network_hw: Tuple[int, int]) -> SegmentationResult:
    """Remove instances smaller than ``min_area_network`` network-input pixels.

    The area is measured on the result's maps and compared with the threshold scaled from
    the network size to the output size. A removed instance's pixels keep their class:
    ``instance`` becomes 0 and ``panoptic`` becomes ``class * label_divisor``, exactly what
    the graph gives thing pixels that no centre claimed.

    Args:
        result: A ``SegmentationResult`` (not modified).
        min_area_network: Threshold in pixels at network resolution; 0 keeps everything.
        network_hw: (height, width) of the network input.

    Returns:
        ``result`` itself when nothing is removed, else a copy with new ``instance`` and
        ``panoptic`` int32 (H, W) maps (its cached segments cleared).
    """
    if min_area_network <= 0 or not result.instance.any():
        return result
    out_h, out_w = result.output_size
    scale = (out_h * out_w) / float(network_hw[0] * network_hw[1])
    threshold = min_area_network * scale
    instance = result.instance
    areas = np.bincount(instance.ravel(), minlength=1)
    small = areas < threshold
    small[0] = False
    small &= areas > 0
    if not small.any():
        return result
    removed = small[instance]
    new_instance = np.where(removed, 0, instance).astype(np.int32)
    new_panoptic = np.where(removed, result.panoptic - instance, result.panoptic).astype(np.int32)
    return replace(result, instance=new_instance, panoptic=new_panoptic, _segments=None)


def scale_camera_info(info: Any, output_hw: Tuple[int, int]) -> Any:
    """Rescale a CameraInfo-like message in place to an image of ``output_hw``.

    Scales ``k`` and ``p`` (focal lengths, principal point and ``p``'s Tx / Ty terms), the
    region of interest, and sets ``width`` / ``height``. Distortion ``d`` and rectification
    ``r`` are resolution-independent. A message with width or height 0 (uncalibrated) only
    gets the new size.

    Args:
        info: Object with ``width, height, k (9), p (12), roi`` (rclpy or rosbags message).
        output_hw: (height, width) of the published images.

    Returns:
        ``info``.
    """
    out_h, out_w = int(output_hw[0]), int(output_hw[1])
    if info.width > 0 and info.height > 0 and (info.width, info.height) != (out_w, out_h):
        sx, sy = out_w / float(info.width), out_h / float(info.height)
        k = np.array(info.k, dtype=np.float64).reshape(9)
        k[[0, 1, 2]] *= sx
        k[[3, 4, 5]] *= sy
        info.k = k
        p = np.array(info.p, dtype=np.float64).reshape(12)
        p[[0, 1, 2, 3]] *= sx
        p[[4, 5, 6, 7]] *= sy
        info.p = p
        roi = info.roi
        roi.x_offset = int(round(roi.x_offset * sx))
        roi.y_offset = int(round(roi.y_offset * sy))
        roi.width = int(round(roi.width * sx))
        roi.height = int(round(roi.height * sy))
    info.width, info.height = out_w, out_h
    return info


@dataclass(frozen=True)
class DetectionBox:
    """One instance as a 2-D detection, in output-image pixels.

    Attributes:
        id: Panoptic id of the instance (class * label_divisor + instance).
        class_id: Train id.
        class_name: Label set name of the class.
        score: Instance centre score (or mean confidence when the model has none).
        center_x, center_y, width, height: Axis-aligned box covering the instance's pixels.
    """

    id: int
    class_id: int
    class_name: str
    score: float
    center_x: float
    center_y: float
    width: float
    height: float


def detection_boxes(result: SegmentationResult,
                    class_names: Sequence[str]) -> List[DetectionBox]:
    """One box per instance (thing segment with instance id > 0) of ``result``."""
    boxes = []
    for segment in result.segments:
        if segment.id % result.label_divisor == 0:
            continue
        x, y, width, height = segment.bbox
        boxes.append(DetectionBox(
            id=int(segment.id), class_id=int(segment.category_id),
            class_name=class_names[segment.category_id], score=float(segment.score),
            center_x=x + width / 2.0, center_y=y + height / 2.0, width=float(width),
            height=float(height)))
    return boxes
