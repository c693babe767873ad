"""``seg-perception bench`` runs what the node runs by default (no ``confidence``);
``--all-outputs`` runs the whole graph. ``--efficiency`` profiles the graph that ran."""

import json

import pytest

from seg_perception.cli import main as cli_main

pytest.importorskip('onnx')
pytest.importorskip('torch')
pytestmark = pytest.mark.usefixtures('torch_one_thread')


@pytest.fixture
def package(lively_enet_panoptic):
    return lively_enet_panoptic


@pytest.mark.parametrize('extra, confidence', [((), False), (('--all-outputs',), True)])
def test_bench_outputs(package, tmp_path, capsys, extra, confidence):
    out = tmp_path / 'bench.json'
    assert cli_main(['bench', '--package', package, '--backend', 'onnxruntime',
                     '--iterations', '2', '--warmup', '0', '--threads', '1',
                     '--json', str(out), *extra]) == 0
    outputs = json.loads(out.read_text())['outputs']
    assert ('confidence' in outputs) is confidence
    assert set(outputs) >= {'semantic', 'instance', 'panoptic', 'instance_score'}
    assert f'graph outputs: {", ".join(outputs)}' in capsys.readouterr().out


def test_bench_efficiency_profiles_the_pruned_graph(package, capsys, monkeypatch):
    from seg_perception.tools import efficiency
    profiled = []
    original = efficiency.profile_graph

    def profile(path, **options):
        import onnx
        profiled.append([value.name for value in onnx.load(path).graph.output])
        return original(path, **options)

    monkeypatch.setattr(efficiency, 'profile_graph', profile)
    monkeypatch.setattr(efficiency, 'machine_rates',
                        lambda threads: {'matmul': 1.0, 'conv': 1.0})
    assert cli_main(['bench', '--package', package, '--backend', 'onnxruntime',
                     '--iterations', '2', '--warmup', '0', '--threads', '1',
                     '--efficiency']) == 0
    assert profiled == [['semantic', 'instance', 'panoptic', 'instance_score']]
    assert 'post-processing' in capsys.readouterr().out
