"""The evaluator loads only the graph outputs it records (``confidence`` only when the output
bag records it) and refuses a given Segmenter that lacks an output the bag records."""

from dataclasses import replace
import os

import pytest

from seg_perception.bags.synthetic_bag import write_synthetic_bag
from seg_perception.evaluation.config import EvalConfig, EvalError
from seg_perception.evaluation.evaluate import load_segmenter, run_evaluation
from seg_perception.evaluation.fleet import FleetConfig, segmenter_config

pytest.importorskip('onnx')
pytest.importorskip('torch')
pytestmark = pytest.mark.usefixtures('torch_one_thread')


@pytest.fixture
def package(lively_enet_panoptic):
    return lively_enet_panoptic


def _config(package, **options):
    options.setdefault('out_dir', 'unused')
    return EvalConfig(model=package, backend='onnxruntime', device='cpu', threads=1,
                      progress=False, handle_sigint=False, **options)


@pytest.mark.parametrize('options, confidence', [
    ({'bag': 'some.mcap'}, True),                                # default: every output
    ({'bag': 'some.mcap', 'outputs': ('semantic', 'overlay')}, False),
    ({'bag': 'some.mcap', 'outputs': ()}, False),                # no output bag
    ({'dataset_dir': 'some/folder'}, False),                     # folder mode: no bag
])
def test_confidence_only_when_the_output_bag_records_it(package, options, confidence):
    with load_segmenter(_config(package, **options)) as segmenter:
        assert ('confidence' in segmenter.graph_outputs) is confidence


def test_fleet_workers_skip_confidence_without_bag_outputs(package):
    template = _config(package)
    assert segmenter_config(FleetConfig(bags=['a'], template=template, out_dir='o')
                            ).outputs == ()
    kept = segmenter_config(FleetConfig(bags=['a'], template=template, out_dir='o',
                                        bag_outputs=True))
    assert kept.outputs == template.outputs


def test_a_given_segmenter_without_confidence_is_refused(package, tmp_path):
    bag = str(tmp_path / 'drive')
    write_synthetic_bag(bag, frames=1, width=128, height=64, seed=1)
    config = _config(package, bag=bag, out_dir=str(tmp_path / 'out'),
                     image_topics=['/cam0/image_raw'])
    with load_segmenter(replace(config, outputs=('semantic',))) as segmenter:
        with pytest.raises(EvalError, match='records confidence'):
            run_evaluation(config, segmenter)
        summary = run_evaluation(replace(config, outputs=('semantic', 'overlay')), segmenter)
    assert summary.metrics['frames']['evaluated'] == 1
    assert os.path.isdir(os.path.join(config.out_dir, 'segmentation_bag'))
