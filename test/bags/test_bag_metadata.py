"""Bags written for Humble, Iron, Jazzy and Kilted: metadata.yaml as that rosbag2 reads it.

Each written metadata.yaml is checked against the distribution's rosbag2 decoder rules
(test/fixtures/rosbag2_metadata_schema.yaml, via rosbag2_schema.py), with a non-empty QoS
profile copied from an input bag, and read back with rosbags.
"""

import os

import pytest
from rosbag2_schema import load_schema, metadata_errors
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
import yaml

from seg_perception.bags.bag_io import (
    BagError,
    BagReader,
    BagWriter,
    camera_info_message,
    CAMERA_INFO_TYPE,
    IMAGE_TYPE,
    make_header,
    make_typestore,
)
from seg_perception.bags.metadata import BAG_FORMATS, default_distro
from seg_perception.bags.synthetic_bag import write_synthetic_bag
from seg_perception.cli import main as cli_main
from seg_perception.evaluation.output_bag import OutputBag
from seg_perception.evaluation.sources import CameraStream

QOS = Qos(QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT, QosDurability.VOLATILE,
          QosTime(0, 0), QosTime(2147483647, 4294967295), QosLiveliness.AUTOMATIC,
          QosTime(0, 0), False)
EXPECTED_VERSION = {'humble': 5, 'iron': 7, 'jazzy': 9, 'kilted': 9}
SCHEMA_DISTROS = sorted(load_schema())


def read_metadata(bag_dir):
    with open(os.path.join(bag_dir, 'metadata.yaml'), 'r', encoding='utf-8') as stream:
        return yaml.safe_load(stream)


@pytest.fixture(scope='module')
def qos_source(tmp_path_factory):
    """A bag whose /cam0/camera_info was offered best effort, depth 5 (a connection to copy)."""
    path = str(tmp_path_factory.mktemp('source') / 'bag')
    with BagWriter(path, distro='jazzy') as writer:
        writer._writer.add_connection('/cam0/camera_info', CAMERA_INFO_TYPE,
                                      typestore=writer.typestore, offered_qos_profiles=[QOS])
    return path


def test_schema_covers_the_written_distros_and_catches_version_9_for_humble(tmp_path):
    assert SCHEMA_DISTROS == sorted(BAG_FORMATS)
    for distro, bag_format in BAG_FORMATS.items():
        assert load_schema()[distro]['version'] == bag_format.version == EXPECTED_VERSION[distro]
    # What the output bag was before: rosbags' version 9, list-valued QoS profiles.
    path = str(tmp_path / 'v9')
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        writer.add_connection('/cam0/camera_info', CAMERA_INFO_TYPE,
                              typestore=make_typestore('jazzy'), offered_qos_profiles=[QOS])
    document = read_metadata(path)
    assert metadata_errors(document, 'jazzy') == []
    errors = metadata_errors(document, 'humble')
    assert errors and 'version 9' in errors[0], errors
    document['rosbag2_bagfile_information']['version'] = 5
    assert any('offered_qos_profiles: list, not one YAML string' in e
               for e in metadata_errors(document, 'humble'))


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
@pytest.mark.parametrize('distro', sorted(EXPECTED_VERSION))
def test_written_metadata_is_what_the_distro_reads(tmp_path, qos_source, distro, storage):
    path = str(tmp_path / 'bag')
    with BagReader(qos_source) as source, BagWriter(path, storage=storage,
                                                     distro=distro) as writer:
        writer.add_topic('/cam0/camera_info', CAMERA_INFO_TYPE,
                         source_connection=source.connection('/cam0/camera_info'))
        writer.add_topic('/cam0/segmentation/semantic', IMAGE_TYPE)
        header = make_header(writer.typestore, 1_000_000_123, 'cam0')
        writer.write('/cam0/camera_info', 1_000_000_123,
                     camera_info_message(writer.typestore, header, (64, 128), 100.0, (64, 32)))
    document = read_metadata(path)
    information = document['rosbag2_bagfile_information']
    assert information['version'] == EXPECTED_VERSION[distro]
    assert metadata_errors(document, distro) == []
    topics = {t['topic_metadata']['name']: t['topic_metadata']
              for t in information['topics_with_message_count']}
    qos = topics['/cam0/camera_info']['offered_qos_profiles']
    if distro in ('humble', 'iron'):
        assert isinstance(qos, str) and 'reliability: 2' in qos
        assert topics['/cam0/segmentation/semantic']['offered_qos_profiles'] == ''
        assert 'ros_distro' not in information
    else:
        assert qos[0]['reliability'] == 'best_effort' and qos[0]['depth'] == 5
    # Older distributions' bags stay readable by the newer ones, and by rosbags.
    newer = SCHEMA_DISTROS[SCHEMA_DISTROS.index(distro):]
    assert all(metadata_errors(document, other) == [] for other in newer)
    with BagReader(path, distro=distro) as reader:
        assert reader.counts == {'/cam0/camera_info': 1, '/cam0/segmentation/semantic': 0}
        assert reader.connection('/cam0/camera_info').ext.offered_qos_profiles == [QOS]
        message = next(reader.messages(['/cam0/camera_info']))
        assert reader.deserialize(message).header.frame_id == 'cam0'


def test_default_distro_follows_ros_distro(monkeypatch, tmp_path):
    assert default_distro({'ROS_DISTRO': 'jazzy'}) == 'jazzy'
    assert default_distro({'ROS_DISTRO': 'Kilted\n'}) == 'kilted'
    assert default_distro({'ROS_DISTRO': 'rolling'}) == 'humble'
    assert default_distro({}) == 'humble'
    monkeypatch.setenv('ROS_DISTRO', 'jazzy')
    with BagWriter(str(tmp_path / 'jazzy')) as writer:
        assert writer.distro == 'jazzy'
    assert read_metadata(str(tmp_path / 'jazzy'))['rosbag2_bagfile_information']['version'] == 9
    monkeypatch.delenv('ROS_DISTRO')
    with BagWriter(str(tmp_path / 'humble')):
        pass
    assert read_metadata(str(tmp_path / 'humble'))['rosbag2_bagfile_information']['version'] == 5
    with pytest.raises(BagError, match="ROS distribution 'foxy' is not one of humble, iron"):
        BagWriter(str(tmp_path / 'foxy'), distro='foxy')
    assert not os.path.exists(tmp_path / 'foxy')


@pytest.mark.parametrize('distro', ['humble', 'kilted'])
def test_eval_output_bag_is_written_for_the_distro(tmp_path, distro):
    drive = str(tmp_path / 'drive')
    write_synthetic_bag(drive, frames=1, cameras=1, width=128, height=64, distro=distro)
    assert metadata_errors(read_metadata(drive), distro) == []
    stream = CameraStream('/cam0', '/cam0/image_raw', IMAGE_TYPE, '/cam0/labels/semantic',
                          '/cam0/camera_info')
    out = str(tmp_path / 'out')
    with BagReader(drive) as reader:
        bag = OutputBag(out, reader, [stream], outputs=('semantic', 'camera_info'),
                        distro=distro)
        for message in reader.messages(['/cam0/camera_info']):
            bag.copy(stream, message)
        bag.close()
    document = read_metadata(out)
    assert document['rosbag2_bagfile_information']['version'] == EXPECTED_VERSION[distro]
    assert metadata_errors(document, distro) == []


def test_eval_command_writes_the_distros_output_bag(tmp_path, exported_package, monkeypatch):
    drive = str(tmp_path / 'drive')
    write_synthetic_bag(drive, frames=1, cameras=1, width=128, height=64)
    monkeypatch.setenv('ROS_DISTRO', 'kilted')
    out = str(tmp_path / 'eval')
    code = cli_main(['eval', drive, '--image-topic', '/cam0/image_raw', '--no-labels',
                     '--model', exported_package(), '--backend', 'onnxruntime', '--out', out,
                     '--outputs', 'semantic', '--report', 'none', '--no-progress'])
    assert code == 0
    document = read_metadata(os.path.join(out, 'segmentation_bag'))
    assert document['rosbag2_bagfile_information']['version'] == 9
    assert metadata_errors(document, 'kilted') == []
    out = str(tmp_path / 'eval_humble')
    assert cli_main(['eval', drive, '--image-topic', '/cam0/image_raw', '--no-labels',
                     '--model', exported_package(), '--backend', 'onnxruntime', '--out', out,
                     '--outputs', 'semantic', '--report', 'none', '--no-progress',
                     '--distro', 'humble']) == 0
    document = read_metadata(os.path.join(out, 'segmentation_bag'))
    assert metadata_errors(document, 'humble') == []
    assert document['rosbag2_bagfile_information']['version'] == 5


def test_full_disk_while_rewriting_metadata_is_an_oserror(tmp_path, monkeypatch):
    """As the storage's own write errors: the evaluator's output bag records it and removes
    the partial bag; no temporary file is left."""
    import errno

    from seg_perception.bags import metadata

    def full(path, mode='r', **kwargs):
        if 'w' in mode:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return open(path, mode, **kwargs)

    monkeypatch.setattr(metadata, 'open', full, raising=False)
    writer = BagWriter(str(tmp_path / 'bag'), distro='humble')
    with pytest.raises(OSError, match='No space left'):
        writer.close()
    assert sorted(os.listdir(tmp_path / 'bag')) == ['bag.mcap', 'metadata.yaml']
    drive = str(tmp_path / 'drive')
    monkeypatch.undo()
    write_synthetic_bag(drive, frames=1, cameras=1, width=128, height=64)
    monkeypatch.setattr(metadata, 'open', full, raising=False)
    stream = CameraStream('/cam0', '/cam0/image_raw', IMAGE_TYPE)
    with BagReader(drive) as reader:
        bag = OutputBag(str(tmp_path / 'out'), reader, [stream], outputs=('semantic',),
                        distro='humble')
        bag.close()
    assert 'No space left on device' in bag.failed and not os.path.exists(tmp_path / 'out')
