"""Every output frame the node publishes reaches a reliable subscriber on the default transport.

The node (nothing set in the environment; the module is skipped where the environment
chooses a Fast DDS transport) offers reliable volatile outputs and configures its own
participant for large data; 15 full-size frames sent one at a time all reach a reliable
subscriber on every subscribed output. No loss rate is asserted: a reliable writer must
deliver every sample it still holds, and one frame at a time it holds them all (with the
former keep-last 1, the next frame evicted samples still under repair: 1-13 of 15 missing).
"""

import os
import signal
import time

import numpy as np
import pytest
from ros_helpers import (
    fresh_domain_id,
    NodeProcess,
    rgb_message,
    RosClient,
    stamp_key,
    wait_until_subscribed,
)
from seg_test_models import export_lively_package

from seg_perception.tools.demo_setup import FAST_DDS_TRANSPORT_VARIABLES

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')
from sensor_msgs.msg import Image  # noqa: E402

OUTPUTS = ('semantic', 'instance', 'panoptic', 'semantic_color')
if any(os.environ.get(name) for name in FAST_DDS_TRANSPORT_VARIABLES):
    pytest.skip('this environment chooses a Fast DDS transport; these tests are about the '
                'default one', allow_module_level=True)
START_TIMEOUT = 90.0
TIMEOUT = 30.0


@pytest.fixture(scope='module')
def package(tmp_path_factory):
    torch.set_num_threads(1)
    return export_lively_package('enet', 'panoptic', 64, 128,
                                 str(tmp_path_factory.mktemp('delivery_enet')), batch=2)


def _image(seed, height=512, width=1024):
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1))


def _answered(client, topics, key):
    return [topic for topic in topics if client.find(topic, key) is not None]


def test_reliable_subscriber_gets_every_frame_on_default_transport(package, tmp_path):
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from seg_perception.ros.qos import OUTPUT_DEPTH, output_qos
    qos = output_qos()
    assert (qos.reliability, qos.durability, qos.depth) == \
        (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, OUTPUT_DEPTH)
    assert OUTPUT_DEPTH >= 10
    domain_id = fresh_domain_id()
    node = NodeProcess({'model': package, 'cameras': ['cam'], 'threads': 1}, domain_id,
                       str(tmp_path / 'node.log'))
    client = RosClient(domain_id, name='delivery_client')
    topics = [f'/cam/segmentation/{output}' for output in OUTPUTS]
    try:
        for topic in topics:
            client.subscribe(topic, Image, keep=40)  # reliable, depth 10
        camera = client.publisher('/cam/image_raw', Image)
        assert wait_until_subscribed(client, [camera], START_TIMEOUT), node.output()
        image = _image(1)
        deadline = time.monotonic() + TIMEOUT
        while True:  # until the node has matched every output subscription of ours
            camera.publish(rgb_message(image, client.now_stamp(), 'cam'))
            if client.wait_for(lambda: all(client.messages(t) for t in topics), 3.0):
                break
            assert time.monotonic() < deadline, node.output()[-3000:]
        offered = client.node.get_publishers_info_by_topic('/cam/segmentation/panoptic')
        assert [(info.qos_profile.reliability, info.qos_profile.durability)
                for info in offered] == [(ReliabilityPolicy.RELIABLE,
                                          DurabilityPolicy.VOLATILE)]
        sent = []
        for index in range(15):
            stamp = client.now_stamp()
            camera.publish(rgb_message(_image(index + 2), stamp, 'cam'))
            key = stamp_key(stamp)
            sent.append(key)
            # The node has published this frame once any output of it arrived; the next
            # frame goes out at once, while repairs of this one may still be under way.
            assert client.wait_for(lambda: _answered(client, topics, key), TIMEOUT), \
                node.output()[-3000:]
        complete = client.wait_for(
            lambda: all(len(_answered(client, topics, key)) == len(topics) for key in sent),
            TIMEOUT)
        missing = {topic: sum(client.find(topic, key) is None for key in sent)
                   for topic in topics}
        assert complete, f'frames missing per topic: {missing}'
        assert 'transport: Fast DDS profile' in node.output()
    finally:
        node.stop(signal.SIGTERM)
        client.close()
