"""Fleet evaluation: 6 synthetic bags and a corrupt one, 1 process = --jobs 2 = local Ray."""

import json
import os
import sys

import pytest

from seg_perception.bags.synthetic_bag import write_synthetic_bag
from seg_perception.evaluation.config import EvalConfig, EvalError
from seg_perception.evaluation.fleet import FleetConfig, run_fleet

torch = pytest.importorskip('torch')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from seg_test_models import export_lively_package  # noqa: E402

#: Fields that depend on timing; every other field must match to the last digit.
TIMING = ('runner', 'wall_s', 'latency_ms', 'seconds', 'latency_p50_ms')


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp('fleet')
    package = export_lively_package('enet', 'panoptic', 64, 128, str(root / 'package'))
    bags = []
    for index in range(6):
        bags.append(str(root / f'drive{index}'))
        write_synthetic_bag(bags[-1], frames=2, width=256, height=128, seed=index)
    corrupt = root / 'corrupt.mcap'
    corrupt.write_bytes(b'\x89MCAP0\r\n' + os.urandom(64))
    bags.insert(3, str(corrupt))
    template = EvalConfig(out_dir='', model=package, backend='onnxruntime', device='cpu',
                          threads=1, image_topics=['/cam0/image_raw'])
    return root, bags, template


def _run(fleet, name, **options):
    root, bags, template = fleet
    out = str(root / name)
    metrics = run_fleet(FleetConfig(bags=bags, template=template, out_dir=out, **options),
                        log=lambda line: None)
    with open(os.path.join(out, 'fleet_metrics.json')) as stream:
        assert json.load(stream)['bags'] == metrics['bags']
    return out, metrics


@pytest.fixture(scope='module')
def serial(fleet):
    return _run(fleet, 'serial')


def test_the_fleet_report_merges_bags_and_reports_the_corrupt_one(serial):
    out, metrics = serial
    assert metrics['bags'] == {'total': 7, 'evaluated': 6, 'failed': 1}
    assert metrics['frames']['read'] == metrics['frames']['evaluated'] == 12
    assert [f['name'] for f in metrics['failed_bags']] == ['corrupt']
    rows = metrics['per_bag']
    assert rows[0]['name'] == 'corrupt' and rows[0]['error']
    ious = [row['mean_iou'] for row in rows[1:]]
    assert ious == sorted(ious)  # worst first
    assert metrics['latency_ms']['count'] == 12
    with open(os.path.join(out, 'fleet_report.md')) as stream:
        report = stream.read()
    for heading in ('## Bags, worst first', '## Classes', '## Latency',
                    '## Failed bags (left out of the totals)'):
        assert heading in report
    assert os.path.isfile(os.path.join(out, 'bags', 'drive0', 'metrics.json'))


def test_merged_metrics_are_the_sums_not_averages(serial, fleet):
    """The fleet confusion equals one evaluation of all the frames: per-bag counts added."""
    out, metrics = serial
    total = None
    for index in range(6):
        with open(os.path.join(out, 'bags', f'drive{index}', 'metrics.json')) as stream:
            tp = json.load(stream)['panoptic']['tp']
        total = tp if total is None else total + tp
    assert metrics['panoptic']['tp'] == total


def test_two_local_processes_give_identical_metrics(serial, fleet):
    _, metrics = _run(fleet, 'jobs2', jobs=2)
    assert _without_timing(metrics) == _without_timing(serial[1])


def test_a_local_ray_cluster_gives_identical_metrics(serial, fleet):
    ray = pytest.importorskip('ray', reason='Ray is not installed (pip install '
                              '"seg-perception[ray]")')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _, metrics = _run(fleet, 'ray', ray_address='')
    finally:
        ray.shutdown()
    assert metrics['runner'] == 'ray local'
    assert _without_timing(metrics) == _without_timing(serial[1])


def test_ray_missing_is_one_line(monkeypatch, fleet):
    from seg_perception.evaluation import fleet_ray
    monkeypatch.setitem(sys.modules, 'ray', None)
    with pytest.raises(EvalError, match='pip install "seg-perception\\[ray\\]"'):
        fleet_ray.import_ray()
