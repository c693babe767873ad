"""Replay of bags over real ROS 2 (rclpy), each test run under its own ROS_DOMAIN_ID."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from seg_perception.bags.bag_io import BagError, BagReader, decode_rgb, stamp_to_ns
from seg_perception.bags.synthetic_bag import write_synthetic_bag

rclpy = pytest.importorskip('rclpy')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOMAIN_ID = 60 + os.getpid() % 40
WIDTH, HEIGHT = 320, 160
FRAMES = 3
# Guards against a hung test only; nothing asserts on how long anything takes.
GIVE_UP_S = 60.0


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('replay') / 'drive')
    write_synthetic_bag(path, frames=FRAMES, cameras=1, storage='mcap', width=WIDTH,
                        height=HEIGHT, seed=9)
    return path


@pytest.fixture
def context():
    from rclpy.context import Context
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def _subscriber(context, topics):
    """A node collecting (topic, message) pairs with the node's image QoS."""
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    node = Node('replay_test_listener', context=context)
    received = []
    lock = threading.Lock()
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE)
    for topic in topics:
        kind = CameraInfo if topic.endswith('camera_info') else Image

        def keep(msg, topic=topic):
            with lock:
                received.append((topic, msg))
        node.create_subscription(kind, topic, keep, qos)
    return node, received


def _spin_until(context, node, condition):
    from rclpy.executors import SingleThreadedExecutor
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    give_up = time.monotonic() + GIVE_UP_S
    while not condition() and time.monotonic() < give_up:
        executor.spin_once(timeout_sec=0.05)
    executor.remove_node(node)


def _recorded_images(bag):
    with BagReader(bag) as reader:
        return {stamp_to_ns(msg.header): decode_rgb(msg, m.msgtype)
                for m in reader.messages(['/cam0/image_raw'])
                for msg in [reader.deserialize(m)]}


def test_replay_command_publishes_recorded_frames_until_sigint(bag, context):
    node, received = _subscriber(context, ['/cam0/image_raw', '/cam0/camera_info'])
    env = dict(os.environ, PYTHONPATH=REPO, ROS_DOMAIN_ID=str(DOMAIN_ID))
    process = subprocess.Popen(
        [sys.executable, '-m', 'seg_perception.cli', 'replay', bag, '--loop', '--rate', '2'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        expected = _recorded_images(bag)

        def stamps():
            return {stamp_to_ns(m.header) for t, m in list(received) if t.endswith('image_raw')}
        _spin_until(context, node, lambda: stamps() == set(expected)
                    and any(t.endswith('camera_info') for t, _ in list(received)))
        info = node.get_publishers_info_by_topic('/cam0/image_raw')
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=GIVE_UP_S)
        node.destroy_node()
    assert stamps() == set(expected), stderr
    for topic, msg in received:
        if topic.endswith('image_raw'):
            assert msg.header.frame_id == 'cam0_optical_frame'
            np.testing.assert_array_equal(decode_rgb(msg, 'sensor_msgs/msg/Image'),
                                          expected[stamp_to_ns(msg.header)])
        else:
            assert (msg.width, msg.height) == (WIDTH, HEIGHT)
    from rclpy.qos import ReliabilityPolicy
    assert [i.qos_profile.reliability for i in info] == [ReliabilityPolicy.RELIABLE]
    assert process.returncode == 0, stderr
    assert 'stopped' in stdout


def test_replay_bag_once_in_process(bag, context):
    from seg_perception.ros.replay import replay_bag
    published = []
    stats = replay_bag(bag, rate=10.0, topics=['cam0/image_raw', '/cam0/labels/panoptic'],
                       context=context, on_published=lambda t, ns: published.append((t, ns)))
    assert stats.loops == 1
    assert stats.published == {'/cam0/image_raw': FRAMES, '/cam0/labels/panoptic': FRAMES}
    times = [ns for _, ns in published]
    assert times == sorted(times)


def test_replay_errors(bag, context, tmp_path):
    from seg_perception.ros.replay import message_class, replay_bag
    with pytest.raises(BagError, match=r'/nope is not in bag .*/cam0/image_raw'):
        replay_bag(bag, topics=['/nope'], context=context)
    with pytest.raises(BagError, match='rate must be positive'):
        replay_bag(bag, rate=0.0, context=context)
    with pytest.raises(BagError, match='package no_such_msgs is not installed'):
        message_class('no_such_msgs/msg/Thing')
    from seg_perception.cli import main as cli_main
    assert cli_main(['replay', str(tmp_path / 'missing')]) == 2
