"""`seg-perception bench-node` runs the real node against the bare Segmenter and reports."""

import json

from ros_helpers import fresh_domain_id

from seg_perception.cli import main as cli_main


def test_bench_node_reports_every_measure(tmp_path, capsys, exported_package):
    package = exported_package('enet', 'panoptic', 64, 128)
    out = tmp_path / 'bench.json'
    status = cli_main(['bench-node', '--model', package, '--backend', 'onnxruntime',
                       '--width', '320', '--height', '160', '--frames', '3',
                       '--flood-seconds', '1.5', '--threads', '1', '--measure', 'speed',
                       '--domain-id', str(fresh_domain_id()), '--json', str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    for measure in ('Segmenter alone', 'camera publish -> panoptic received',
                    'throughput, two cameras batched', 'node peak RSS'):
        assert measure in printed
    report = json.loads(out.read_text())
    assert report['frames'] == 3 and report['peak_rss_mib'] > 0


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
