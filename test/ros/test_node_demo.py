"""``seg-perception demo`` end to end: node subprocess, two synthetic cameras over real topics,
MCAP bag of every output, summary table and contact sheet (short run, cached random ENet)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from ros_helpers import fresh_domain_id, REPO_ROOT

pytestmark = pytest.mark.ros

pytest.importorskip('rclpy')
pytest.importorskip('torch')


def test_demo_records_scores_and_draws(tmp_path):
    out = tmp_path / 'demo'
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / 'cache'), OMP_NUM_THREADS='1',
               PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    command = [sys.executable, '-m', 'seg_perception.cli', 'demo', '--out', str(out),
               '--duration', '4', '--domain-id', str(fresh_domain_id()), '--threads', '1',
               '--width', '512', '--height', '256']  # small: keeps the bag small
    done = subprocess.run(command, env=env, cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    lines = {line.split()[0]: line.split() for line in output.splitlines() if line.strip()}
    for camera in ('front', 'rear'):
        row = lines[camera]
        published, frames_in, frames_out, dropped = (int(v) for v in row[1:5])
        assert published >= 20 and 0 < frames_out <= frames_in <= published, row
        assert frames_in == frames_out + dropped, row
        assert 0 < int(row[6]) <= frames_out, row  # outputs scored against ground truth
        assert row[10] != 'n/a' and row[11] != 'n/a', row  # mIoU and PQ were computed
    assert 'Traceback' not in output

    from seg_perception.bags.bag_io import BagReader
    from seg_perception.images.raw import decode_image
    with BagReader(str(out / 'demo_bag')) as bag:
        topics = [f'/{camera}/segmentation/{output}' for camera in ('front', 'rear')
                  for output in ('semantic', 'semantic_color', 'overlay', 'instance',
                                 'panoptic', 'panoptic_color', 'camera_info')]
        messages = list(bag.messages(topics + ['/diagnostics']))
        recorded = {message.topic for message in messages}
        assert set(topics) <= recorded, recorded
        for message in messages:
            if message.topic.endswith('/panoptic'):
                msg = bag.deserialize(message)
                camera = message.topic.split('/')[1]
                assert msg.header.frame_id == f'{camera}_optical'
                assert decode_image(msg).shape == (256, 512)
    import cv2
    sheet = cv2.imread(str(out / 'contact_sheet.png'))
    assert sheet is not None and sheet.shape[1] == 4 * 512 and sheet.shape[0] >= 256
    assert np.ptp(sheet) > 0
