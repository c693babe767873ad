"""pipeline/worker.py: frames arrive undecoded; the worker decodes only those it segments and
reports the ones that cannot be decoded as rejected."""

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception.images.raw import ImageDecodeError
from seg_perception.pipeline.config import NodeConfig
from seg_perception.pipeline.latest_frame import LatestFrameStore
from seg_perception.pipeline.worker import Frame, InferenceWorker
from seg_perception.segmenter import Segmenter

torch = pytest.importorskip('torch')


@pytest.fixture(scope='module')
def segmenter(tmp_path_factory):
    torch.set_num_threads(1)
    path = export_lively_package('enet', 'panoptic', 64, 128,
                                 str(tmp_path_factory.mktemp('enet_b2_decode')), batch=2)
    with Segmenter.from_package(path, backend='onnxruntime', threads=1) as created:
        yield created


class Decoder:
    """A frame's decode function that counts its calls; raises ``error`` when given."""

    def __init__(self, seed, error=None):
        self.calls, self.seed, self.error = 0, seed, error

    def __call__(self):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return np.random.default_rng(self.seed).integers(0, 256, (96, 160, 3), dtype=np.uint8)


@pytest.mark.parametrize('batch_cameras', [True, False])
def test_only_the_newest_frame_is_decoded_and_bad_ones_are_rejected(segmenter, batch_cameras):
    config = NodeConfig.from_values({'cameras': ['a', 'b'], 'batch_cameras': batch_cameras})
    store = LatestFrameStore(['a', 'b'])
    delivered, errors, rejected = [], [], []
    worker = InferenceWorker(segmenter, store, lambda: config, lambda camera, output: True,
                             lambda frame, outputs: delivered.append(frame.camera),
                             lambda camera, reason: errors.append((camera, reason)),
                             on_reject=lambda camera, reason: rejected.append((camera, reason)))
    stale = [Decoder(seed) for seed in range(3)]
    newest = Decoder(9)
    for decoder in stale + [newest]:
        store.put('a', Frame('a', None, None, 0.0, decode=decoder))
    broken = Decoder(1, ImageDecodeError('JPEG data (10 bytes) is corrupt: libjpeg: ...'))
    store.put('b', Frame('b', None, None, 0.0, decode=broken))
    assert worker.process_pending() == 1
    assert [d.calls for d in stale] == [0, 0, 0] and newest.calls == 1
    assert delivered == ['a'] and errors == []
    assert rejected == [('b', 'JPEG data (10 bytes) is corrupt: libjpeg: ...')]
    assert store.counts('a').dropped == 3


def test_unexpected_decode_error_is_a_rejection_with_its_type(segmenter):
    config = NodeConfig.from_values({'cameras': ['a']})
    store = LatestFrameStore(['a'])
    rejected = []
    worker = InferenceWorker(segmenter, store, lambda: config, lambda camera, output: True,
                             lambda frame, outputs: None, lambda camera, reason: None,
                             on_reject=lambda camera, reason: rejected.append(reason))
    store.put('a', Frame('a', None, None, 0.0, decode=Decoder(0, MemoryError('out of memory'))))
    assert worker.process_pending() == 0
    assert rejected == ['MemoryError: out of memory']
