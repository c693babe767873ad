"""Hostile compressed frames are rejected before they can harm the node.

A node (compressed transport, camera ``jpg``) gets a PNG bomb that decodes to 16384 x 8192
as the camera's first frame: refused by the size in its header within seconds and without
memory growth (decoding it would take ~384 MiB and seconds, segmenting it gigabytes). Then a
normal JPEG is answered; a cut-short PNG, a frame of another size, a truncated JPEG and a
JPEG with missing scan data are each rejected and counted; a normal JPEG is answered again.
"""

import signal
import time

from image_bombs import (
    camera_jpeg,
    jpeg_missing_scan_data,
    png_bomb,
    truncated_jpeg,
)
import pytest
from ros_helpers import (
    diagnostic_values,
    fresh_domain_id,
    NodeProcess,
    RosClient,
    stamp_key,
    wait_until_subscribed,
)
from seg_test_models import export_lively_package

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

START_TIMEOUT = 90.0
TIMEOUT = 30.0


@pytest.fixture(scope='module')
def package(tmp_path_factory):
    torch.set_num_threads(1)
    return export_lively_package('enet', 'panoptic', 64, 128,
                                 str(tmp_path_factory.mktemp('bombs_enet')), batch=2)


def _compressed(data, client, frame_id='jpg'):
    from std_msgs.msg import Header
    message = CompressedImage(header=Header(stamp=client.now_stamp(), frame_id=frame_id),
                              format='png' if data[:4] == b'\x89PNG' else 'jpeg')
    message.data = data
    return message


def test_bombs_cut_short_and_corrupt_frames_are_rejected_before_harm(package, tmp_path):
    domain_id = fresh_domain_id()
    node = NodeProcess({'model': package, 'cameras': ['jpg'], 'threads': 1,
                        'input_transport': 'compressed'}, domain_id,
                       str(tmp_path / 'node.log'))
    client = RosClient(domain_id, name='bomb_client')
    panoptic = '/jpg/segmentation/panoptic'
    try:
        client.subscribe(panoptic, Image)
        client.subscribe('/diagnostics', DiagnosticArray, keep=4)
        camera = client.publisher('/jpg/image_raw/compressed', CompressedImage)
        assert wait_until_subscribed(client, [camera], START_TIMEOUT), node.output()

        def rejections(count, timeout=20.0):
            found = {}

            def check():
                for array in reversed(client.messages('/diagnostics')):
                    values = diagnostic_values(array, ': jpg')
                    if values is not None and int(values['rejected']) >= count:
                        found.update(values)
                        return True
                return False
            assert client.wait_for(check, timeout), node.output()[-3000:]
            return found

        def exchange(data):
            deadline = time.monotonic() + TIMEOUT
            while True:
                message = _compressed(data, client)
                camera.publish(message)
                key = stamp_key(message.header.stamp)
                if client.wait_for(lambda: client.find(panoptic, key) is not None, 3.0):
                    return client.find(panoptic, key)
                assert time.monotonic() < deadline, node.output()[-3000:]

        rss_before = node.rss_bytes()
        started = time.monotonic()
        camera.publish(_compressed(png_bomb(16384, 8192), client))  # the camera's first frame
        values = rejections(1)
        assert time.monotonic() - started < 15.0
        assert 'image size 16384x8192 = 134217728 pixels exceeds max_image_pixels' \
            in values['last_rejection']
        assert node.rss_bytes() - rss_before < 100 * 2 ** 20
        jpeg = camera_jpeg(256, 512)
        answer = exchange(jpeg)
        assert (answer.width, answer.height) == (512, 256)
        bad = [(png_bomb(512, 256)[:-30], 'png data'),  # right size, cut short
               (png_bomb(1024, 512), 'differs from camera jpg'),
               (truncated_jpeg(jpeg), 'is truncated'),
               (jpeg_missing_scan_data(jpeg), 'is corrupt: libjpeg: Corrupt JPEG data')]
        for count, (data, reason) in enumerate(bad, start=2):  # the bomb was the first
            camera.publish(_compressed(data, client))
            values = rejections(count)
            assert int(values['rejected']) == count and reason in values['last_rejection'], \
                (reason, values)
        assert exchange(jpeg).width == 512
        assert node.process.poll() is None and 'Traceback' not in node.output()
    finally:
        node.stop(signal.SIGTERM)
        client.close()
