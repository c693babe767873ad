"""seg_perception_lifecycle_node driven over its real lifecycle services.

A client node calls ``<node>/change_state`` and ``<node>/get_state`` (lifecycle_msgs) as a
lifecycle manager does: configure -> activate -> a frame is answered -> deactivate -> no
output -> cleanup -> configure -> activate -> answered again (no restart) -> shutdown. A
configure that cannot load the model fails with its one-line reason and leaves the node
unconfigured.
"""

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

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

MODULE = 'seg_perception.ros.lifecycle_node'
NODE = '/seg_perception'
PANOPTIC = '/lc/segmentation/panoptic'
TIMEOUT = 60.0


def call(client, srv_type, name, request, timeout=TIMEOUT):
    """Call a service of the node from the test client; returns the response."""
    service = client.node.create_client(srv_type, name)
    try:
        assert service.wait_for_service(timeout_sec=timeout), f'{name} is not available'
        future = service.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert future.done(), f'{name} did not answer in {timeout} s'
        return future.result()
    finally:
        client.node.destroy_client(service)


def transition(client, transition_id):
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return call(client, ChangeState, f'{NODE}/change_state', request).success


def state(client):
    return call(client, GetState, f'{NODE}/get_state', GetState.Request()).current_state.id


def answered(client, camera, timeout=30.0):
    """Send frames until one is answered on PANOPTIC; True if one was."""
    image = np.full((64, 128, 3), 120, np.uint8)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stamp = client.now_stamp()
        camera.publish(rgb_message(image, stamp, 'lc_optical'))
        key = stamp_key(stamp)
        if client.wait_for(lambda: client.find(PANOPTIC, key) is not None, 2.0):
            return True
    return False


@pytest.fixture(scope='module')
def package(tmp_path_factory):
    torch.set_num_threads(1)
    return export_lively_package('enet', 'panoptic', 64, 128,
                                 str(tmp_path_factory.mktemp('lc_enet')))


def test_transitions_over_lifecycle_services(package, tmp_path):
    domain_id = fresh_domain_id()
    node = NodeProcess({'model': package, 'cameras': ['lc'], 'threads': 1}, domain_id,
                       str(tmp_path / 'node.log'), module=MODULE)
    client = RosClient(domain_id, name='lifecycle_manager_stand_in')
    try:
        client.subscribe(PANOPTIC, Image, keep=64)
        camera = client.publisher('/lc/image_raw', Image)
        assert state(client) == State.PRIMARY_STATE_UNCONFIGURED, node.output()
        assert transition(client, Transition.TRANSITION_CONFIGURE), node.output()
        assert state(client) == State.PRIMARY_STATE_INACTIVE
        assert camera.get_subscription_count() == 0  # inactive: not subscribed

        # Frames sent while inactive: none may ever be answered. Rather than wait out a
        # timeout for each, the test checks after the node has answered a later frame (and
        # again before shutdown) that none of them was.
        inactive_frames = []
        for round_index in range(3):  # brought up again twice without a restart
            assert transition(client, Transition.TRANSITION_ACTIVATE), node.output()
            assert state(client) == State.PRIMARY_STATE_ACTIVE
            assert wait_until_subscribed(client, [camera], TIMEOUT), node.output()
            assert answered(client, camera), node.output()[-3000:]
            assert all(client.find(PANOPTIC, key) is None for key in inactive_frames)

            assert transition(client, Transition.TRANSITION_DEACTIVATE), node.output()
            assert state(client) == State.PRIMARY_STATE_INACTIVE
            assert client.wait_for(lambda: camera.get_subscription_count() == 0, TIMEOUT)
            if round_index == 2:
                break
            before = len(client.arrivals(PANOPTIC))
            stamp = client.now_stamp()
            camera.publish(rgb_message(np.full((64, 128, 3), 120, np.uint8), stamp,
                                       'lc_optical'))
            inactive_frames.append(stamp_key(stamp))

            assert transition(client, Transition.TRANSITION_CLEANUP), node.output()
            assert state(client) == State.PRIMARY_STATE_UNCONFIGURED
            assert len(client.arrivals(PANOPTIC)) == before  # no output while inactive
            assert transition(client, Transition.TRANSITION_CONFIGURE), node.output()

        assert transition(client, Transition.TRANSITION_INACTIVE_SHUTDOWN), node.output()
        assert state(client) == State.PRIMARY_STATE_FINALIZED
        assert node.stop(signal.SIGTERM) == 0
        log = node.output()
        assert 'activated' in log and 'deactivated' in log and 'cleaned up' in log
        assert 'Traceback' not in log
    finally:
        node.stop(signal.SIGTERM)
        client.close()


def test_configure_failure_is_reported_and_leaves_the_node_unconfigured(tmp_path):
    domain_id = fresh_domain_id()
    missing = str(tmp_path / 'no_such_package')
    node = NodeProcess({'model': missing, 'cameras': ['lc']}, domain_id,
                       str(tmp_path / 'node.log'), module=MODULE)
    client = RosClient(domain_id, name='lifecycle_manager_stand_in')
    try:
        assert not transition(client, Transition.TRANSITION_CONFIGURE)
        assert state(client) == State.PRIMARY_STATE_UNCONFIGURED
        assert node.process.poll() is None  # still serving its lifecycle services
        failures = [line for line in node.output().splitlines() if 'configure failed' in line]
        assert len(failures) == 1 and f"parameter model '{missing}'" in failures[0], \
            node.output()
        assert 'Traceback' not in node.output()
    finally:
        node.stop(signal.SIGTERM)
        client.close()
