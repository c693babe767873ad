"""`seg-perception bench-node` runs the real node against the bare Segmenter and reports."""

import json

from ros_helpers import fresh_domain_id

from seg_perception.cli import main as cli_main


def test_bench_node_reports_every_measure(tmp_path, capsys, exported_package):
    package = exported_package('enet', 'panoptic', 64, 128)
    out = tmp_path / 'bench.json'
    status = cli_main(['bench-node', '--model', package, '--backend', 'onnxruntime',
                       '--width', '320', '--height', '160', '--frames', '3',
                       '--flood-seconds', '1.5', '--threads', '1',
                       '--domain-id', str(fresh_domain_id()), '--json', str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    for measure in ('Segmenter alone', 'camera publish -> panoptic received',
                    'throughput, two cameras batched', 'node peak RSS'):
        assert measure in printed
    report = json.loads(out.read_text())
    assert report['frames'] == 3 and report['peak_rss_mib'] > 0
