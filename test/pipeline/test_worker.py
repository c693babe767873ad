"""pipeline/worker.py: the inference worker, render_outputs and the pipelined worker with a
real exported model."""

import threading

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception.pipeline.config import NodeConfig
from seg_perception.pipeline.latest_frame import LatestFrameStore
from seg_perception.pipeline.outputs import render_outputs
from seg_perception.pipeline.worker import Frame, InferenceWorker
from seg_perception.segmenter import Segmenter

torch = pytest.importorskip('torch')

NET_HEIGHT, NET_WIDTH = 64, 128


@pytest.fixture(scope='module')
def segmenter(tmp_path_factory):
    torch.set_num_threads(1)
    path = export_lively_package('enet', 'panoptic', NET_HEIGHT, NET_WIDTH,
                                 str(tmp_path_factory.mktemp('enet_b2')), batch=2)
    with Segmenter.from_package(path, backend='onnxruntime', threads=1) as created:
        yield created


def _images(count, height=120, width=200):
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _run_worker(segmenter, config, frames, wants=lambda camera, output: True):
    store = LatestFrameStore([frame.camera for frame in frames])
    delivered, errors = {}, []
    worker = InferenceWorker(segmenter, store, lambda: config, wants,
                             lambda frame, outputs: delivered.update({frame.camera: outputs}),
                             lambda camera, reason: errors.append((camera, reason)))
    for frame in frames:
        store.put(frame.camera, frame)
    worker.process_pending()
    return delivered, errors


def test_worker_batched_and_unbatched_give_identical_outputs(segmenter):
    images = _images(2)
    frames = [Frame(camera, image, None, 0.0) for camera, image in zip('ab', images)]
    base = NodeConfig.from_values({'cameras': ['a', 'b'], 'batch_cameras': 'true'})
    batched, _ = _run_worker(segmenter, base, frames)
    single, _ = _run_worker(segmenter, base.updated({'batch_cameras': 'false'}), frames)
    for camera in 'ab':
        for output in ('semantic', 'instance', 'panoptic', 'overlay', 'panoptic_color'):
            np.testing.assert_array_equal(batched[camera].images[output],
                                          single[camera].images[output])
    assert batched['a'].result.instance.max() > 0  # the lively model finds instances


def test_worker_renders_only_wanted_outputs_at_network_resolution(segmenter):
    config = NodeConfig.from_values({'output_resolution': 'network',
                                     'instance_encoding': 'mono16'})
    frame = Frame('camera', _images(1)[0], None, 0.0)
    delivered, _ = _run_worker(segmenter, config, [frame],
                               wants=lambda camera, output: output in ('instance', 'overlay'))
    outputs = delivered['camera']
    assert outputs.output_hw == (NET_HEIGHT, NET_WIDTH)
    assert outputs.images['instance'].dtype == np.uint16
    assert outputs.images['overlay'].shape == (64, 128, 3)
    assert sorted(outputs.images) == ['instance', 'overlay']


def test_worker_reports_a_failing_frame_and_keeps_serving(segmenter):
    config = NodeConfig.from_values({'cameras': ['bad', 'good'], 'batch_cameras': False})
    bad = Frame('bad', np.zeros((10, 10), np.uint8), None, 0.0)
    good = Frame('good', _images(1)[0], None, 0.0)
    delivered, errors = _run_worker(segmenter, config, [bad, good])
    assert list(delivered) == ['good']
    assert errors and errors[0][0] == 'bad' and 'ValueError' in errors[0][1]


def test_render_applies_runtime_min_instance_area(segmenter):
    image = _images(1)[0]
    result = segmenter.segment(image)
    config = NodeConfig.from_values({})
    labels, network_hw = segmenter.manifest.label_set, segmenter.network_size
    everything = render_outputs(image, result, config.render_settings, labels, network_hw,
                                lambda output: True).images
    huge = render_outputs(
        image, result, config.updated({'min_instance_area': 10 ** 6}).render_settings, labels,
        network_hw, lambda output: True).images
    assert everything['instance'].max() > 0 and huge['instance'].max() == 0
    np.testing.assert_array_equal(huge['panoptic'] // 1000, everything['panoptic'] // 1000)


def test_pipelined_worker_delivers_the_same_outputs_and_stops(segmenter):
    images = _images(2)
    config = NodeConfig.from_values({'cameras': ['a', 'b']})
    expected, _ = _run_worker(segmenter, config, [Frame(c, i, None, 0.0)
                                                  for c, i in zip('ab', images)])
    store = LatestFrameStore(['a', 'b'])
    delivered, errors = {}, []
    done = threading.Event()

    def deliver(frame, outputs):
        delivered[frame.camera] = outputs
        if len(delivered) == 2:
            done.set()

    worker = InferenceWorker(segmenter, store, lambda: config, lambda camera, output: True,
                             deliver, lambda camera, reason: errors.append(reason),
                             pipelined=True)
    worker.start()
    try:
        for camera, image in zip('ab', images):
            store.put(camera, Frame(camera, image, None, 0.0))
        assert done.wait(60), errors
    finally:
        assert worker.stop(timeout=30)
    assert not errors
    for camera in 'ab':
        for output in ('panoptic', 'overlay'):
            np.testing.assert_array_equal(delivered[camera].images[output],
                                          expected[camera].images[output])
