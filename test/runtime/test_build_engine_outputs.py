"""``seg-perception build-engine`` builds the engine of the graph outputs the node loads, on
the TensorRT / cuda-python stand-ins (``fake_tensorrt`` parses the real ONNX it is given).

By default that is the node's default output set (``DEFAULT_GRAPH_OUTPUTS``: no
``confidence``), under the key ``Segmenter.from_package(..., outputs=...)`` looks up, so a
node that may not build finds it; ``--outputs`` names another set and ``--all-outputs``
builds the full engine under the full key.
"""

import os

import fake_tensorrt
import pytest
from seg_test_models import export_lively_package

from seg_perception import cli
from seg_perception.pipeline.graph_outputs import DEFAULT_GRAPH_OUTPUTS
from seg_perception.runtime.base import BackendError
from seg_perception.runtime.engine_cache import read_sidecar
from seg_perception.segmenter import Segmenter

pytest.importorskip('onnx')
pytest.importorskip('torch')

ALL = ('semantic', 'confidence', 'instance', 'panoptic', 'instance_score')


@pytest.fixture
def package(writable_lively_enet_panoptic):
    return writable_lively_enet_panoptic


@pytest.fixture
def trt(monkeypatch):
    return fake_tensorrt.install(monkeypatch)


def _engine_line(printed):
    return next(line for line in printed.splitlines() if line.startswith('engine: '))[8:]


def _node_segmenter(package, outputs):
    """The Segmenter a node with ``allow_engine_build`` false loads."""
    return Segmenter.from_package(package, backend='tensorrt', outputs=outputs,
                                  allow_build=False)


def _engine_outputs(segmenter):
    return tuple(spec.name for spec in segmenter.backend._specs if not spec.is_input)


def test_default_engine_is_the_one_the_node_looks_up(trt, package, capsys):
    assert 'confidence' not in DEFAULT_GRAPH_OUTPUTS
    assert cli.main(['build-engine', package]) == 0
    printed = capsys.readouterr().out
    assert len(trt.builds) == 1
    written = _engine_line(printed)
    assert os.path.dirname(written) == package and os.path.isfile(written)
    assert read_sidecar(written).key.outputs == DEFAULT_GRAPH_OUTPUTS
    assert f'engine outputs: {", ".join(DEFAULT_GRAPH_OUTPUTS)}' in printed
    with _node_segmenter(package, DEFAULT_GRAPH_OUTPUTS) as segmenter:
        backend = segmenter.backend
        assert backend.decision.use and backend.engine_path == written
        assert backend.key.outputs == DEFAULT_GRAPH_OUTPUTS
        assert 'confidence' not in _engine_outputs(segmenter)
    # Asked again: found, nothing built.
    assert cli.main(['build-engine', package]) == 0
    assert 'nothing to build' in capsys.readouterr().out and len(trt.builds) == 1
    # The full graph is another key: a node with publish_confidence finds no engine.
    with pytest.raises(BackendError, match='engine building is disabled'):
        _node_segmenter(package, ALL)


def test_all_outputs_builds_the_full_engine_under_the_full_key(trt, package, capsys):
    assert cli.main(['build-engine', package, '--all-outputs']) == 0
    printed = capsys.readouterr().out
    written = _engine_line(printed)
    assert 'outputs' not in read_sidecar(written).key.to_dict()
    assert f'engine outputs: all ({", ".join(ALL)})' in printed
    with _node_segmenter(package, ALL) as segmenter:
        assert segmenter.backend.key.outputs == () and segmenter.backend.engine_path == written
        assert 'confidence' in _engine_outputs(segmenter)
    # --check: the full engine stands in for the missing pruned one (said, not built).
    assert cli.main(['build-engine', package, '--check']) == 0
    printed = capsys.readouterr().out
    assert 'no engine pruned to semantic, instance, panoptic, instance_score yet' in printed
    assert _engine_line(printed) == written and len(trt.builds) == 1
    # Without --check the pruned one is built although the full one could stand in.
    assert cli.main(['build-engine', package]) == 0
    printed = capsys.readouterr().out
    assert 'none pruned to semantic, instance, panoptic, instance_score yet' in printed
    assert len(trt.builds) == 2 and _engine_line(printed) != written
    with _node_segmenter(package, DEFAULT_GRAPH_OUTPUTS) as segmenter:
        assert segmenter.backend.engine_path == _engine_line(printed)
        assert segmenter.backend.key.outputs == DEFAULT_GRAPH_OUTPUTS
    assert os.path.isfile(written)  # the full engine stays


def test_outputs_names_the_engine_of_other_switches(trt, package, capsys):
    """``publish_detections`` false: the node needs no instance_score either."""
    wanted = ('semantic', 'instance', 'panoptic')
    assert cli.main(['build-engine', package, '--outputs', 'panoptic, semantic,instance']) == 0
    written = _engine_line(capsys.readouterr().out)
    assert read_sidecar(written).key.outputs == wanted
    with _node_segmenter(package, wanted) as segmenter:
        assert segmenter.backend.engine_path == written
        assert _engine_outputs(segmenter) == wanted


def test_check_without_any_engine_fails(trt, package, capsys):
    assert cli.main(['build-engine', package, '--check']) == 1
    assert 'engine building is disabled' in capsys.readouterr().err and not trt.builds


@pytest.mark.parametrize('names, message', [
    ('semantic,scores', "unknown graph output(s) 'scores'; valid: " + ', '.join(ALL)),
    ('semantic', 'lack instance, panoptic, which the Segmenter of a panoptic model needs; '
                 'valid: ' + ', '.join(ALL)),
])
def test_bad_output_names_get_one_line_naming_the_valid_ones(trt, package, capsys, names,
                                                             message):
    assert cli.main(['build-engine', package, '--outputs', names]) == 2
    error = capsys.readouterr().err
    assert error.startswith('build-engine: --outputs: ') and message in error
    assert error.count('\n') == 1 and not trt.builds


def test_outputs_and_all_outputs_exclude_each_other(trt, package, capsys):
    with pytest.raises(SystemExit):
        cli.main(['build-engine', package, '--outputs', 'semantic', '--all-outputs'])
    assert 'not allowed with argument' in capsys.readouterr().err


def test_semantic_model_default_is_its_whole_graph(trt, tmp_path, capsys):
    """A semantic graph scores instances by confidence: the node's default keeps it all."""
    package = export_lively_package('enet', 'semantic', 64, 128, str(tmp_path / 'sem'))
    assert cli.main(['build-engine', package]) == 0
    printed = capsys.readouterr().out
    assert 'engine outputs: all (semantic, confidence)' in printed
    with _node_segmenter(package, DEFAULT_GRAPH_OUTPUTS) as segmenter:
        assert segmenter.backend.engine_path == _engine_line(printed)
        assert segmenter.backend.key.outputs == ()


def test_without_onnx_the_engine_has_every_output(trt, package, capsys, monkeypatch):
    """Nothing can prune: the full engine is the one the node (also without onnx) uses."""
    from seg_perception.runtime import tensorrt_backend
    monkeypatch.setattr(tensorrt_backend, 'onnx_available', lambda: False)
    for _ in range(2):
        assert cli.main(['build-engine', package]) == 0
        printed = capsys.readouterr().out
        assert 'engine outputs: all (' in printed and 'pruned' not in printed
    assert len(trt.builds) == 1 and 'nothing to build' in printed
