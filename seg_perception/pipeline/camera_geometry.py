"""camera_info as REP 104 defines it: the image size it implies, and its copy for the outputs.

A ``sensor_msgs/CameraInfo`` describes the full-resolution, unbinned sensor (``width``,
``height``, ``k``, ``p``). The image it belongs to is the region of interest (``roi``; all
zero = the whole sensor) divided by the binning factors (``binning_x/y``; 0 and 1 = none), so
its size is ``roi.width / binning_x`` x ``roi.height / binning_y``. A camera_info that implies
another size than the image's is reported (the image's own size wins), never a reason to drop
frames. Nothing here imports rclpy; messages are read by attribute (rclpy or rosbags types).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np


def _binning(value: Any) -> int:
    return max(1, int(value or 0))


def roi_of(info: Any) -> Tuple[int, int, int, int]:
    """(x_offset, y_offset, width, height) of the region of interest in sensor pixels.

    An ROI with width or height 0 means the whole sensor (REP 104).
    """
    roi = getattr(info, 'roi', None)
    if roi is None or not int(roi.width) or not int(roi.height):
        return 0, 0, int(info.width), int(info.height)
    return int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)


def implied_image_hw(info: Any) -> Optional[Tuple[int, int]]:
    """(height, width) of the image ``info`` describes, or None when it is uncalibrated.

    Args:
        info: A CameraInfo-like object (``width``, ``height``, ``binning_x/y``, ``roi``).
    """
    if int(info.width) <= 0 or int(info.height) <= 0:
        return None
    _, _, width, height = roi_of(info)
    bx = _binning(getattr(info, 'binning_x', 0))
    by = _binning(getattr(info, 'binning_y', 0))
    return height // by, width // bx


def size_mismatch(info: Any, image_hw: Tuple[int, int]) -> Optional[str]:
    """Why ``info`` does not fit an image of ``image_hw`` (height, width), or None if it does."""
    implied = implied_image_hw(info)
    if implied is None or tuple(int(v) for v in image_hw) == implied:
        return None
    bx = _binning(getattr(info, 'binning_x', 0))
    by = _binning(getattr(info, 'binning_y', 0))
    x, y, width, height = roi_of(info)
    how = f'{int(info.width)}x{int(info.height)}'
    if (width, height) != (int(info.width), int(info.height)):
        how += f', roi {width}x{height}+{x}+{y}'
    if bx > 1 or by > 1:
        how += f', binning {bx}x{by}'
    return (f'image is {int(image_hw[1])}x{int(image_hw[0])} but its camera_info ({how}) '
            f'implies {implied[1]}x{implied[0]}; using the image size')


def scale_camera_info(info: Any, output_hw: Tuple[int, int]) -> Any:
    """Turn ``info`` (in place) into the camera_info of an output image of ``output_hw``.

    The output image is the camera's image (ROI, then binning) resized to ``output_hw``, so
    ``k`` and ``p`` are shifted by the ROI offset and scaled by ``output / sensor ROI``; the
    result describes the output image directly: its ``width`` / ``height`` are
    ``output_hw``, ``binning`` 0 and ``roi`` zero (whole image). Distortion ``d`` and
    rectification ``r`` do not depend on the resolution. An uncalibrated message (width or
    height 0) only gets the new size.

    Args:
        info: Object with ``width, height, k (9), p (12), roi`` and optionally
            ``binning_x/y`` (rclpy or rosbags message, or a namespace).
        output_hw: (height, width) of the published images.

    Returns:
        ``info``.
    """
    out_h, out_w = int(output_hw[0]), int(output_hw[1])
    implied = implied_image_hw(info)
    if implied is not None and implied[0] > 0 and implied[1] > 0:
        x, y, width, height = roi_of(info)
        ax, ay = out_w / float(width), out_h / float(height)
        # Sensor pixel -> output pixel: shift by the ROI offset, then scale (REP 104;
        # image_geometry applies the same affine map for ROI and binning).
        affine = np.array([[ax, 0.0, -x * ax], [0.0, ay, -y * ay], [0.0, 0.0, 1.0]])
        info.k = (affine @ np.array(info.k, dtype=np.float64).reshape(3, 3)).reshape(9)
        info.p = (affine @ np.array(info.p, dtype=np.float64).reshape(3, 4)).reshape(12)
        roi = getattr(info, 'roi', None)
        if roi is not None:
            roi.x_offset = roi.y_offset = roi.width = roi.height = 0
            if hasattr(roi, 'do_rectify'):
                roi.do_rectify = False
        if hasattr(info, 'binning_x'):
            info.binning_x = info.binning_y = 0
    info.width, info.height = out_w, out_h
    return info


def camera_info_topic(camera: str, image_topic: str) -> str:
    """The camera_info topic beside an image topic (image_transport's convention).

    ``<camera>/image_raw`` -> ``<camera>/camera_info``;
    ``<camera>/color/image_raw`` -> ``<camera>/color/camera_info``.
    """
    folder = image_topic.strip('/').rpartition('/')[0]
    return '/'.join(part for part in (camera, folder, 'camera_info') if part)
