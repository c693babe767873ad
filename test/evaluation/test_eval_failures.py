"""``eval`` that could evaluate nothing, or could not write its output bag: a non-zero exit,
one line with the reasons, metrics.json for what was done, no footer-less bag left."""

import errno
import json
import os

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception.bags.bag_io import BagWriter, image_message, IMAGE_TYPE, make_header
from seg_perception.bags.synthetic_bag import write_synthetic_bag
from seg_perception.cli import main as cli_main
from seg_perception.data.synthetic.generator import SceneGenerator

pytest.importorskip('torch')
pytestmark = pytest.mark.usefixtures('torch_one_thread')

IMAGE_W, IMAGE_H = 128, 64


@pytest.fixture(scope='module')
def package(tmp_path_factory):
    return export_lively_package('enet', 'panoptic', 64, 128,
                                 str(tmp_path_factory.mktemp('enet_panoptic')))


def eval_cli(package, bag, out, topic='/cam/image_raw'):
    return cli_main(['eval', str(bag), '--model', package, '--backend', 'onnxruntime',
                     '--threads', '1', '--out', str(out), '--no-progress',
                     '--image-topic', topic])


def unusable_bag(path):
    """6 images, none usable: labels of the wrong size (3), train ids out of range (2) and a
    label whose stamp is shifted off its image's (1)."""
    frame = SceneGenerator(IMAGE_W, IMAGE_H, seed=1).generate(0)
    out_of_range = np.full_like(frame.semantic, 77)
    with BagWriter(path) as writer:
        store = writer.typestore
        writer.add_topic('/cam/image_raw', IMAGE_TYPE)
        writer.add_topic('/cam/labels/semantic', IMAGE_TYPE)
        for index in range(6):
            stamp = 1000 + index
            writer.write('/cam/image_raw', stamp, image_message(
                store, frame.image, 'rgb8', make_header(store, stamp, 'c')))
            label = frame.semantic[:, :100] if index < 3 else out_of_range
            label_stamp = stamp + 500 if index == 5 else stamp
            writer.write('/cam/labels/semantic', stamp, image_message(
                store, label, 'mono8', make_header(store, label_stamp, 'c')))


def test_nothing_evaluated_exits_non_zero_with_the_reasons_counted(package, tmp_path, capsys):
    bag = tmp_path / 'unusable'
    unusable_bag(str(bag))
    assert eval_cli(package, bag, tmp_path / 'out') == 4
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[-1] == ('seg-perception eval: error: none of the 6 frames read could be '
                          'evaluated (label size 3, bad label 2, no label 1); metrics.json '
                          'lists each with its reason')
    with open(tmp_path / 'out' / 'metrics.json') as stream:
        frames = json.load(stream)['frames']
    assert frames['evaluated'] == 0 and frames['skipped'] == 6


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('drive') / 'bag')
    write_synthetic_bag(path, frames=4, width=IMAGE_W, height=IMAGE_H, seed=3)
    return path


def test_a_full_disk_removes_the_partial_bag_and_keeps_the_metrics(
        package, drive, tmp_path, monkeypatch, capsys):
    real = BagWriter.write_raw
    written = []

    def full_after_six_messages(self, topic, stamp, raw):
        if len(written) == 6:  # ENOSPC: tests run as root, so a chmod would not stop writes
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(topic)
        real(self, topic, stamp, raw)

    monkeypatch.setattr(BagWriter, 'write_raw', full_after_six_messages)
    out = tmp_path / 'out'
    assert eval_cli(package, drive, out, '/cam0/image_raw') == 5
    error = [line for line in capsys.readouterr().err.splitlines() if 'output bag' in line]
    assert error == [f'seg-perception eval: error: output bag: No space left on device; '
                     f'recording stopped after 0 frames and the partial output bag '
                     f'{out / "segmentation_bag"} was removed']
    assert not (out / 'segmentation_bag').exists()
    with open(out / 'metrics.json') as stream:
        metrics = json.load(stream)
    assert metrics['frames']['evaluated'] == 4 and metrics['output_bag'] is None
    assert metrics['output_bag_error'].startswith('No space left on device')


def test_a_full_disk_at_the_footer_removes_the_bag(package, drive, tmp_path, monkeypatch):
    from seg_perception.evaluation import output_bag
    real_close = BagWriter.close

    def footer_fails(self):
        if os.path.basename(self.path) == 'segmentation_bag' and self._open:
            real_close(self)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        real_close(self)

    monkeypatch.setattr(output_bag.BagWriter, 'close', footer_fails)
    out = tmp_path / 'out'
    assert eval_cli(package, drive, out, '/cam0/image_raw') == 5
    assert not (out / 'segmentation_bag').exists()
    with open(out / 'metrics.json') as stream:
        assert json.load(stream)['frames']['evaluated'] == 4
