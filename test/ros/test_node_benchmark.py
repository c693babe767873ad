"""`seg-perception bench-node` runs the real node against the bare Segmenter and reports."""

import json

from ros_helpers import fresh_domain_id

from seg_perception.cli import main as cli_main


def test_bench_node_reports_every_measure(tmp_path, capsys, exported_package):
    package = exported_package('enet', 'panoptic', 64, 128)
    out = tmp_path / 'bench.json'
    status = cli_main(['bench-node', '--model', package, '--backend', 'onnxruntime',
                       '--width', '320', '--height', '160', '--frames', '3',
                       '--flood-seconds', '1.0', '--threads', '1', '--measure', 'speed',
                       '--cameras', '1,2', '--batch-cameras', 'auto,true',
                       '--domain-id', str(fresh_domain_id()), '--json', str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    for measure in ('Segmenter alone', 'camera publish -> panoptic received', 'node peak RSS',
                    '| cameras | batch_cameras | throughput (all cameras) | latency p50 |'):
        assert measure in printed
    report = json.loads(out.read_text())
    assert report['frames'] == 3 and report['peak_rss_mib'] > 0
    # The bare Segmenter ran the node's pruned graph (default switches: no confidence).
    assert report['graph_outputs'] == ['semantic', 'instance', 'panoptic', 'instance_score']
    assert 'graph outputs computed, by node and Segmenter alike: semantic, instance, ' \
        'panoptic, instance_score' in printed
    # One camera once, two with each setting; the node says what a setting means here.
    runs = report['load_runs']
    assert [(run['cameras'], run['batch_cameras'], run['in_force']) for run in runs] == [
        (1, 'auto', 'auto (off: CPU backend)'), (2, 'auto', 'auto (off: CPU backend)'),
        (2, 'true', 'true (on)')]
    assert all(run['answers'] > 0 and run['latency_p50_ms'] > 0 for run in runs)


def test_bench_node_refuses_a_bad_batch_cameras_list(capsys):
    assert cli_main(['bench-node', '--batch-cameras', 'auto,yes']) == 2
    assert "--batch-cameras takes a comma-separated list of auto, true, false, got 'auto,yes'" \
        in capsys.readouterr().err
    assert cli_main(['bench-node', '--cameras', '0,4']) == 2
    assert "--cameras must be a comma-separated list of 1..8, got '0,4'" in \
        capsys.readouterr().err


def test_bench_node_reports_delivered_over_published(tmp_path, capsys, exported_package):
    package = exported_package('enet', 'panoptic', 64, 128)
    out = tmp_path / 'delivery.json'
    status = cli_main(['bench-node', '--model', package, '--width', '320', '--height', '160',
                       '--threads', '1', '--measure', 'delivery', '--delivery-cameras', '1',
                       '--delivery-frames', '2', '--delivery-seconds', '0.5',
                       '--transports', 'default', '--domain-id', str(fresh_domain_id()),
                       '--json', str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    from seg_perception.ros.delivery_benchmark import DELIVERY_OUTPUTS
    assert '| transport | cameras | camera frames | sent | ' + ' | '.join(
        f'`{name}`' for name in DELIVERY_OUTPUTS) + ' |' in printed
    rows = json.loads(out.read_text())['delivery']
    assert [(row['transport'], row['cameras'], row['workload']) for row in rows] == \
        [('default', 1, 'one at a time'), ('default', 1, '30 Hz')]
    assert rows[0]['sent'] == 2 and 1 <= rows[0]['published'] <= 2
    assert {'semantic', 'instance', 'panoptic', 'semantic_color'} <= set(rows[0]['delivered'])
