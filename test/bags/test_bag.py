"""Bag reading and writing with rosbags: synthetic drives in sqlite3 and MCAP, bad bags."""

import os

import numpy as np
import pytest

from seg_perception.bags.bag_io import (
    BagError,
    BagReader,
    BagWriter,
    camera_namespace,
    decode_rgb,
    image_message,
    make_header,
    stamp_to_ns,
)
from seg_perception.bags.ground_truth import decode_label, LabelError
from seg_perception.bags.synthetic_bag import camera_topics, START_STAMP_NS, write_synthetic_bag
from seg_perception.cli import main as cli_main
from seg_perception.data.synthetic.generator import SceneGenerator
from seg_perception.labels import cityscapes

WIDTH, HEIGHT = 128, 64


@pytest.fixture(scope='module')
def drives(tmp_path_factory):
    """The same 2-camera, 2-frame drive as sqlite3 and as MCAP."""
    root = tmp_path_factory.mktemp('drives')
    paths = {}
    for storage in ('sqlite3', 'mcap'):
        paths[storage] = str(root / storage)
        write_synthetic_bag(paths[storage], frames=2, cameras=2, storage=storage, width=WIDTH,
                            height=HEIGHT, seed=3)
    return paths


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_synthetic_bag_round_trip(drives, storage):
    frames = [[SceneGenerator(WIDTH, HEIGHT, seed=3 + k).generate(i) for i in range(2)]
              for k in range(2)]
    with BagReader(drives[storage]) as reader:
        assert set(reader.topics) == {
            t for k in range(2) for t in (f'/cam{k}/image_raw', f'/cam{k}/camera_info',
                                          f'/cam{k}/labels/semantic', f'/cam{k}/labels/panoptic')}
        assert all(count == 2 for count in reader.counts.values())
        seen = {}
        for message in reader.messages(reader.topics):
            msg = reader.deserialize(message)
            stamp = stamp_to_ns(msg.header)
            assert stamp == message.timestamp_ns
            camera = int(message.topic[4])
            index = (stamp - START_STAMP_NS) // 100_000_000
            frame = frames[camera][index]
            assert msg.header.frame_id == f'cam{camera}_optical_frame'
            if message.topic.endswith('image_raw'):
                np.testing.assert_array_equal(decode_rgb(msg, message.msgtype), frame.image)
            elif message.topic.endswith('panoptic'):
                semantic, panoptic = decode_label(msg, cityscapes(), 1000)
                np.testing.assert_array_equal(panoptic, frame.panoptic)
                np.testing.assert_array_equal(semantic, frame.semantic)
            elif message.topic.endswith('semantic'):
                semantic, panoptic = decode_label(msg, cityscapes(), 1000)
                assert panoptic is None
                np.testing.assert_array_equal(semantic, frame.semantic)
            else:
                assert (msg.width, msg.height) == (WIDTH, HEIGHT)
                assert msg.k[0] == pytest.approx(1.1 * WIDTH)
            seen[message.topic] = seen.get(message.topic, 0) + 1
        assert sum(seen.values()) == 16


def test_png_compressed_bag_is_lossless(tmp_path):
    path = str(tmp_path / 'png')
    write_synthetic_bag(path, frames=1, image_format='png', width=WIDTH, height=HEIGHT)
    topic = camera_topics(0, 'png').image
    assert topic == '/cam0/image_raw/compressed'
    with BagReader(path) as reader:
        message = next(reader.messages([topic]))
        rgb = decode_rgb(reader.deserialize(message), message.msgtype)
    np.testing.assert_array_equal(rgb, SceneGenerator(WIDTH, HEIGHT).generate(0).image)


def test_kilted_definitions_read_with_humble_typestore(tmp_path):
    path = str(tmp_path / 'kilted')
    write_synthetic_bag(path, frames=1, distro='kilted', width=WIDTH, height=HEIGHT)
    with BagReader(path, distro='humble') as reader:
        message = next(reader.messages(['/cam0/image_raw']))
        assert reader.deserialize(message).encoding == 'rgb8'


def test_missing_topic_lists_the_topics_there(drives):
    with BagReader(drives['mcap']) as reader:
        with pytest.raises(BagError, match=r'/front/image_raw is not in bag .*/cam0/image_raw '
                                           r'\(sensor_msgs/msg/Image, 2 msgs\)'):
            reader.require('front/image_raw')
        with pytest.raises(BagError, match='has type sensor_msgs/msg/CameraInfo; expected'):
            reader.require('/cam0/camera_info', ('sensor_msgs/msg/Image',))


def test_missing_and_corrupt_bags_raise_bag_error(tmp_path):
    with pytest.raises(BagError, match='does not exist'):
        BagReader(str(tmp_path / 'nothing'))
    garbage = tmp_path / 'garbage.mcap'
    garbage.write_bytes(b'this is not an mcap file' * 10)
    with pytest.raises(BagError, match='cannot be opened'):
        BagReader(str(garbage))
    folder = tmp_path / 'not_a_bag'
    folder.mkdir()
    (folder / 'metadata.yaml').write_text('rosbag2_bagfile_information: [oops')
    with pytest.raises(BagError, match='cannot be opened'):
        BagReader(str(folder))


@pytest.mark.parametrize('storage, file_name', [('mcap', 'mcap.mcap'),
                                               ('sqlite3', 'sqlite3.db3')])
def test_truncated_bag_is_refused_with_a_clear_error(drives, tmp_path, storage, file_name):
    data = open(os.path.join(drives[storage], file_name), 'rb').read()
    truncated = tmp_path / ('truncated' + os.path.splitext(file_name)[1])
    truncated.write_bytes(data[:len(data) * 2 // 3])
    hint = 'mcap recover' if storage == 'mcap' else 'malformed'
    with pytest.raises(BagError, match=f'cannot be opened .*{hint}'):
        BagReader(str(truncated))


def test_writer_refuses_existing_path_and_undeclared_topic(tmp_path):
    (tmp_path / 'exists').mkdir()
    with pytest.raises(BagError, match='exists already'):
        BagWriter(str(tmp_path / 'exists'))
    with pytest.raises(BagError, match='storage .* is not one of mcap, sqlite3'):
        BagWriter(str(tmp_path / 'x'), storage='rosbag1')
    with BagWriter(str(tmp_path / 'new')) as writer:
        header = make_header(writer.typestore, 5, 'f')
        with pytest.raises(BagError, match='was not declared'):
            writer.write('/a', 5, image_message(writer.typestore, np.zeros((2, 2), np.uint8),
                                                'mono8', header))


def test_label_decoding_rejects_bad_labels():
    labels = cityscapes()
    from seg_perception.images.raw import encode_image
    with pytest.raises(LabelError, match="encoding 'rgb8'"):
        decode_label(encode_image(np.zeros((2, 2, 3), np.uint8), 'rgb8'), labels, 1000)
    with pytest.raises(LabelError, match='id\\(s\\) 19, 254'):
        decode_label(encode_image(np.array([[19, 254], [0, 255]], np.uint8), 'mono8'), labels,
                     1000)
    with pytest.raises(LabelError, match='negative panoptic id'):
        decode_label(encode_image(np.array([[-1]], np.int32), '32SC1'), labels, 1000)
    semantic, panoptic = decode_label(
        encode_image(np.array([[13005, 255000]], np.int32), '32SC1'), labels, 1000)
    assert semantic.tolist() == [[13, 255]] and panoptic.tolist() == [[13005, 255000]]
    semantic, _ = decode_label(encode_image(np.array([[18, 255]], np.uint16), 'mono16'), labels,
                               1000)
    assert semantic.dtype == np.uint8 and semantic.tolist() == [[18, 255]]


@pytest.mark.parametrize('topic, namespace', [
    ('/cam0/image_raw', '/cam0'), ('cam0/image_raw/compressed', '/cam0'),
    ('/car/front/image_rect_color', '/car/front'), ('/image_raw', ''), ('/front', '/front')])
def test_camera_namespace(topic, namespace):
    assert camera_namespace(topic) == namespace


def test_synth_bag_command(tmp_path, capsys):
    out = str(tmp_path / 'cli')
    assert cli_main(['synth-bag', '--out', out, '--frames', '1', '--cameras', '2', '--size',
                     '64x32', '--format', 'sqlite3']) == 0
    assert '/cam1/labels/panoptic: 1' in capsys.readouterr().out
    assert os.path.isfile(os.path.join(out, 'metadata.yaml'))
    assert cli_main(['synth-bag', '--out', out, '--frames', '1']) == 2
    assert 'exists already' in capsys.readouterr().err
    assert cli_main(['synth-bag', '--out', str(tmp_path / 'b'), '--frames', '1', '--size',
                     '10x10']) == 2
    assert 'outside' in capsys.readouterr().err
