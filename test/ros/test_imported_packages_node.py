"""End to end over real ROS 2 topics: the node serves each imported package
(``imported_packages``: ONNX graph with CamVid labels, torchvision LR-ASPP with VOC,
PyTorch-ENet with Cityscapes).

The node takes one model, so three node processes start together (each in its own ROS
domain) for the module. For each: one 200x120 rgb8 frame on ``/cam/image_raw``; its
``segmentation/semantic`` must equal the ``Segmenter``'s semantic map for that frame (same
package, ONNX Runtime, one thread) and ``segmentation/semantic_color`` must be the
package's own palette of it (VOC colours for the VOC package, not Cityscapes').
"""

import signal
import time

from imported_packages import build_imported_packages, SOURCES
import numpy as np
import pytest
from ros_helpers import (
    decode,
    fresh_domain_id,
    NodeProcess,
    rgb_message,
    RosClient,
    stamp_key,
    wait_until_subscribed,
)

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')
from sensor_msgs.msg import Image  # noqa: E402

START_TIMEOUT = 90.0
REPLY_TIMEOUT = 30.0
OUTPUTS = ('semantic', 'semantic_color')
HEIGHT, WIDTH = 120, 200


def camera_image(seed: int) -> np.ndarray:
    """A smooth random RGB uint8 (HEIGHT, WIDTH, 3) image (8x8 blocks)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1))


@pytest.fixture(scope='module')
def packages(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_imported_packages(str(tmp_path_factory.mktemp('imported')))
    finally:
        torch.set_num_threads(threads)


class Served:
    """One node process serving one package on camera ``cam``, and its test client."""

    def __init__(self, package, log_path):
        self.package = package
        self.domain_id = fresh_domain_id()
        self.node = NodeProcess({'model': package.path, 'cameras': ['cam'], 'threads': 1,
                                 'backend': 'onnxruntime'}, self.domain_id, log_path)
        self.client = RosClient(self.domain_id, name=f'imported_{package.source}_client')
        for output in OUTPUTS:
            self.client.subscribe(f'/cam/segmentation/{output}', Image)
        self.images = self.client.publisher('/cam/image_raw', Image)

    def exchange(self, image):
        """Send ``image`` until the node answers it (a fresh node may publish before it
        has discovered this client's subscriptions); returns the outputs by name."""
        topics = [f'/cam/segmentation/{output}' for output in OUTPUTS]
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            stamp = self.client.now_stamp()
            self.images.publish(rgb_message(image, stamp, 'cam_optical'))
            key = stamp_key(stamp)
            if self.client.wait_for(lambda: all(self.client.find(t, key) is not None
                                                for t in topics), 5.0):
                return {o: self.client.find(t, key) for o, t in zip(OUTPUTS, topics)}
            assert time.monotonic() < deadline, (
                f'{self.package.source}: no answer in {REPLY_TIMEOUT} s; node log:\n'
                f'{self.node.output()[-3000:]}')

    def close(self):
        status = self.node.stop(signal.SIGTERM)
        self.client.close()
        return status


@pytest.fixture(scope='module')
def served(packages, tmp_path_factory):
    logs = tmp_path_factory.mktemp('imported_node_logs')
    rigs = {}
    try:
        for source in SOURCES:  # all three start at once; each waits below
            rigs[source] = Served(packages[source], str(logs / f'{source}.log'))
        for rig in rigs.values():
            assert wait_until_subscribed(rig.client, [rig.images], START_TIMEOUT), \
                f'{rig.package.source}: node did not subscribe:\n{rig.node.output()}'
        yield rigs
    finally:
        for rig in rigs.values():
            rig.close()


@pytest.mark.parametrize('source', SOURCES)
def test_node_publishes_the_segmenters_map_in_the_packages_colours(served, source):
    from seg_perception.labels import named_label_set
    from seg_perception.segmenter import Segmenter
    rig = served[source]
    image = camera_image(7)
    outputs = rig.exchange(image)
    semantic, colour = decode(outputs['semantic']), decode(outputs['semantic_color'])
    assert outputs['semantic'].encoding == 'mono8'
    assert semantic.shape == (HEIGHT, WIDTH) and colour.shape == (HEIGHT, WIDTH, 3)
    with Segmenter.from_package(rig.package.path, backend='onnxruntime', device='cpu',
                                threads=1) as segmenter:
        expected = segmenter.segment(image).semantic
    np.testing.assert_array_equal(semantic, expected)
    present = np.unique(semantic)
    assert len(present) >= 2, 'a constant map would prove little'
    label_set = named_label_set(rig.package.labels)
    assert set(present.tolist()) <= set(range(label_set.num_classes))
    np.testing.assert_array_equal(colour, label_set.palette[semantic])
    if label_set.name != 'cityscapes':  # the colours are the package's, not the default's
        cityscapes = named_label_set('cityscapes').palette
        assert any((label_set.palette[k] != cityscapes[k]).any() for k in present)


def test_nodes_stop_cleanly(served):
    for source, rig in served.items():
        assert rig.node.stop(signal.SIGTERM) == 0, source
        log = rig.node.output()
        assert 'Traceback' not in log, log
