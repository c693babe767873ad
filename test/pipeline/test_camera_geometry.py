"""camera_info as REP 104 defines it: implied image size, mismatch notes, output copies."""

from types import SimpleNamespace

import numpy as np

from seg_perception.pipeline.camera_geometry import (
    camera_info_topic,
    implied_image_hw,
    scale_camera_info,
    size_mismatch,
)

K = [800.0, 0.0, 512.0, 0.0, 790.0, 256.0, 0.0, 0.0, 1.0]
P = [800.0, 0.0, 512.0, -40.0, 0.0, 790.0, 256.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def info(binning=(0, 0), roi=(0, 0, 0, 0), size=(1024, 512)):
    x, y, w, h = roi
    return SimpleNamespace(
        width=size[0], height=size[1], binning_x=binning[0], binning_y=binning[1],
        roi=SimpleNamespace(x_offset=x, y_offset=y, width=w, height=h, do_rectify=True),
        k=list(K), p=list(P))


def test_implied_size_follows_binning_and_roi():
    assert implied_image_hw(info()) == (512, 1024)
    assert implied_image_hw(info(binning=(1, 1))) == (512, 1024)
    assert implied_image_hw(info(binning=(2, 4))) == (128, 512)
    assert implied_image_hw(info(roi=(100, 50, 640, 480))) == (480, 640)
    assert implied_image_hw(info(binning=(2, 2), roi=(100, 50, 640, 480))) == (240, 320)
    assert implied_image_hw(info(size=(0, 0))) is None  # uncalibrated


def test_mismatch_is_a_note_naming_both_sizes():
    assert size_mismatch(info(binning=(2, 2)), (256, 512)) is None
    note = size_mismatch(info(binning=(2, 2), roi=(8, 4, 640, 480)), (512, 1024))
    assert 'image is 1024x512' in note and 'implies 320x240' in note
    assert 'roi 640x480+8+4' in note and 'binning 2x2' in note
    assert size_mismatch(info(size=(0, 0)), (1, 1)) is None


def test_binned_roi_camera_info_describes_the_output_image():
    # Sensor 1024x512, ROI 512x256 at (100, 50), binning 2: the image is 256x128.
    msg = info(binning=(2, 2), roi=(100, 50, 512, 256))
    scale_camera_info(msg, (128, 256))  # outputs at the image size
    assert (msg.width, msg.height, msg.binning_x, msg.binning_y) == (256, 128, 0, 0)
    roi = msg.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height, roi.do_rectify) == \
        (0, 0, 0, 0, False)
    # image_geometry: fx / binning, (cx - x_offset) / binning.
    np.testing.assert_allclose(msg.k, [400, 0, 206, 0, 395, 103, 0, 0, 1])
    np.testing.assert_allclose(msg.p, [400, 0, 206, -20, 0, 395, 103, 0, 0, 0, 1, 0])
    # The same camera at the network size 64x32 (a quarter of the image).
    msg = info(binning=(2, 2), roi=(100, 50, 512, 256))
    scale_camera_info(msg, (32, 64))
    np.testing.assert_allclose(msg.k, [100, 0, 51.5, 0, 98.75, 25.75, 0, 0, 1])


def test_camera_info_topic_is_the_image_topic_sibling():
    assert camera_info_topic('cam', 'image_raw') == 'cam/camera_info'
    assert camera_info_topic('cam', 'color/image_raw') == 'cam/color/camera_info'
    assert camera_info_topic('front', '/left/image_rect_color') == 'front/left/camera_info'
