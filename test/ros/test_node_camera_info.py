"""camera_info as REP 104 defines it, and diagnostics that say what is wrong, over real ROS.

One node (image_topic ``color/image_raw``, so camera_info is read from ``<cam>/color/camera_info``)
serves three cameras:

    roi     a camera_info with binning 2 and an ROI that imply the image's 256x128
    other   a camera_info of another size: a warning, frames still answered
    broken  every frame rejected: ERROR with the reason and the count

It is started with ``-p camera:=[front]`` (a typo of ``cameras``); a second node of the same
name joins later.
"""

import signal
import time

import numpy as np
import pytest
from ros_helpers import (
    fresh_domain_id,
    NodeProcess,
    raw_message,
    rgb_message,
    RosClient,
    stamp_key,
    wait_until_subscribed,
)
from seg_test_models import export_lively_package

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

HEIGHT, WIDTH = 128, 256
CAMERAS = ('roi', 'other', 'broken')
START_TIMEOUT = 90.0
TIMEOUT = 30.0


def sensor_info(binning=0, roi=(0, 0, 0, 0), size=(1024, 512)):
    info = CameraInfo(width=size[0], height=size[1], distortion_model='plumb_bob',
                      binning_x=binning, binning_y=binning)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = roi
    info.k = [800.0, 0.0, 512.0, 0.0, 800.0, 256.0, 0.0, 0.0, 1.0]
    info.p = [800.0, 0.0, 512.0, 0.0, 0.0, 800.0, 256.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    torch.set_num_threads(1)
    package = export_lively_package('enet', 'panoptic', 64, 128,
                                    str(tmp_path_factory.mktemp('ci_enet')))
    logs = tmp_path_factory.mktemp('ci_logs')
    domain_id = fresh_domain_id()
    parameters = {'model': package, 'cameras': list(CAMERAS), 'threads': 1,
                  'image_topic': 'color/image_raw', 'camera': ['front'],
                  'diagnostic_updater.period': 0.5}
    node = NodeProcess(parameters, domain_id, str(logs / 'node.log'))
    client = RosClient(domain_id, name='ci_client')
    try:
        for camera in ('roi', 'other'):
            client.subscribe(f'/{camera}/segmentation/panoptic', Image)
            client.subscribe(f'/{camera}/segmentation/camera_info', CameraInfo)
        client.subscribe('/diagnostics', DiagnosticArray, keep=8)
        images = {c: client.publisher(f'/{c}/color/image_raw', Image) for c in CAMERAS}
        infos = {c: client.publisher(f'/{c}/color/camera_info', CameraInfo) for c in CAMERAS}
        assert wait_until_subscribed(client, list(images.values()), START_TIMEOUT), \
            node.output()
        assert wait_until_subscribed(client, list(infos.values()), TIMEOUT), node.output()
        yield dict(node=node, client=client, images=images, infos=infos, domain_id=domain_id,
                   parameters=parameters, logs=logs)
    finally:
        node.stop(signal.SIGTERM)
        client.close()


def exchange(rig, camera, info):
    """Send ``info`` and a frame until the node answers; returns the output camera_info."""
    client = rig['client']
    image = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    topics = [f'/{camera}/segmentation/{o}' for o in ('panoptic', 'camera_info')]
    for _ in range(int(TIMEOUT / 3)):
        rig['infos'][camera].publish(info)
        stamp = client.now_stamp()
        rig['images'][camera].publish(rgb_message(image, stamp, f'{camera}_optical'))
        key = stamp_key(stamp)
        if client.wait_for(lambda: all(client.find(t, key) for t in topics), 3.0):
            return client.find(topics[1], key)
    pytest.fail(f'{camera}: no answer; node log:\n{rig["node"].output()[-3000:]}')


def status(rig, camera, predicate, timeout=20.0):
    found = []

    def check():
        for array in reversed(rig['client'].messages('/diagnostics')):
            for item in array.status:
                if item.name == f'seg_perception: {camera}' and predicate(item):
                    found.append(item)
                    return True
        return False

    assert rig['client'].wait_for(check, timeout), \
        [s for a in rig['client'].messages('/diagnostics')[-1:] for s in a.status
         if s.name.endswith(camera)]
    return found[0]


def test_binned_roi_camera_info_is_legal_and_scaled(rig):
    # Sensor 1024x512, ROI 512x256 at (100, 50), binning 2: the image is 256x128.
    out = exchange(rig, 'roi', sensor_info(binning=2, roi=(100, 50, 512, 256)))
    assert (out.width, out.height, out.binning_x, out.roi.width) == (WIDTH, HEIGHT, 0, 0)
    np.testing.assert_allclose(out.k, [400, 0, 206, 0, 400, 103, 0, 0, 1])
    item = status(rig, 'roi', lambda s: s.level == DiagnosticStatus.OK)
    assert item.hardware_id == '/roi/color/image_raw'
    assert {kv.key: kv.value for kv in item.values}['camera_info'] == 'ok'


def test_camera_info_of_another_size_is_a_warning_not_a_rejection(rig):
    out = exchange(rig, 'other', sensor_info(size=(640, 480)))
    assert (out.width, out.height) == (WIDTH, HEIGHT)  # the image's own size wins
    item = status(rig, 'other', lambda s: s.level == DiagnosticStatus.WARN)
    assert 'implies 640x480' in item.message
    values = {kv.key: kv.value for kv in item.values}
    assert values['rejected'] == '0'
    log = rig['node'].output()
    assert 'image is 256x128 but its camera_info (640x480) implies 640x480' in log


def test_camera_whose_frames_are_all_rejected_is_an_error(rig):
    client = rig['client']
    for _ in range(3):
        rig['images']['broken'].publish(raw_message(HEIGHT, WIDTH, 'rgb9', WIDTH * 3,
                                                    HEIGHT * WIDTH * 3, client.now_stamp()))
        time.sleep(0.1)  # keep-last 1: give each frame its own delivery (not an assertion)
    item = status(rig, 'broken', lambda s: s.level == DiagnosticStatus.ERROR)
    rejected = {kv.key: kv.value for kv in item.values}['rejected']
    assert int(rejected) >= 1
    assert item.message.startswith(f'{rejected} frames rejected, none published: ')
    assert 'rgb9' in item.message


def test_unknown_override_names_the_closest_parameter(rig):
    log = rig['node'].output()
    assert "parameter 'camera' is not a parameter of this node and is ignored; did you " \
        'mean cameras?' in log


def test_second_node_of_the_same_name_is_warned_about(rig):
    twin = NodeProcess({'model': rig['parameters']['model'], 'cameras': ['twin'],
                        'threads': 1}, rig['domain_id'], str(rig['logs'] / 'twin.log'))
    try:
        words = 'nodes are named /seg_perception'
        client = rig['client']
        assert client.wait_for(lambda: words in twin.output() or words in rig['node'].output(),
                               START_TIMEOUT), twin.output()
    finally:
        twin.stop(signal.SIGTERM)
