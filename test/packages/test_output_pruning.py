"""Pruning an exported graph to some of its outputs (``packages.output_pruning``).

The packages are real exports of ENet (random weights, livened up by ``seg_test_models`` so
the panoptic grouping finds instances); the pruned graphs run on ONNX Runtime and must give
exactly the full graph's values for the outputs they keep.
"""

import os

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception.packages.output_pruning import (
    check_output_names,
    prune_onnx_bytes,
    prune_outputs,
    pruned_onnx_file,
    PruningError,
)

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
pytest.importorskip('torch')

HEIGHT, WIDTH = 64, 128
WITHOUT_CONFIDENCE = ('semantic', 'instance', 'panoptic', 'instance_score')


@pytest.fixture(scope='module')
def packages(tmp_path_factory):
    """task -> exported ENet package directory."""
    return {task: export_lively_package('enet', task, HEIGHT, WIDTH,
                                        str(tmp_path_factory.mktemp(f'enet_{task}')))
            for task in ('semantic', 'panoptic')}


def _model(packages, task):
    return onnx.load(os.path.join(packages[task], 'model.onnx'))


def _feeds(session):
    """Smooth 0..255 images (random weights on noise have tiny margins), threshold 0.2."""
    import cv2
    rng = np.random.default_rng(0)
    feeds = {}
    for value in session.get_inputs():
        if value.name == 'center_threshold':
            feeds[value.name] = np.array([0.2], np.float32)
            continue
        batch, _, height, width = value.shape
        coarse = rng.uniform(0, 255, (8, 16, 3)).astype(np.float32)
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        feeds[value.name] = np.clip(image, 0, 255).transpose(2, 0, 1)[None].repeat(batch, 0)
    return feeds


def _run(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                   providers=['CPUExecutionProvider'])
    names = [value.name for value in session.get_outputs()]
    return dict(zip(names, session.run(names, _feeds(session)))), session


def _postprocess_ops(model):
    return [node.op_type for node in model.graph.node if node.name.startswith('/postprocess/')]


@pytest.mark.parametrize('task, outputs', [
    ('panoptic', WITHOUT_CONFIDENCE),
    ('panoptic', ('semantic', 'instance', 'panoptic')),
    ('panoptic', ('semantic', 'confidence')),
    ('panoptic', ('semantic',)),
    ('semantic', ('semantic',)),
])
def test_pruned_outputs_equal_the_full_graphs_exactly(packages, task, outputs):
    model = _model(packages, task)
    full, _ = _run(model)
    pruned = prune_outputs(model, outputs)
    values, session = _run(pruned.model)
    assert tuple(values) == outputs == pruned.outputs
    for name in outputs:
        assert values[name].dtype == full[name].dtype
        np.testing.assert_array_equal(values[name], full[name], err_msg=name)
    if 'instance' in outputs:
        assert full['instance'].max() > 0  # the grouping really ran
    assert [value.name for value in session.get_inputs()] == list(pruned.inputs)


def test_dropping_confidence_drops_its_softmax(packages):
    # ENet's packed logits: a Softmax over the last axis; plain logits: Exp and a MatMul.
    softmax = {'Exp', 'Softmax'}
    for task in ('semantic', 'panoptic'):
        model = _model(packages, task)
        assert softmax & set(_postprocess_ops(model)), task
        kept = WITHOUT_CONFIDENCE if task == 'panoptic' else ('semantic',)
        pruned = prune_outputs(model, kept)
        assert not softmax & set(_postprocess_ops(pruned.model)), task
        assert pruned.removed_outputs == ('confidence',) and pruned.removed_nodes > 0
        assert len(pruned.model.graph.node) == len(model.graph.node) - pruned.removed_nodes
    semantic_only = prune_outputs(_model(packages, 'semantic'), ('semantic',)).model
    assert not {'Exp', 'Softmax', 'ReduceSum'} & set(_postprocess_ops(semantic_only))


def test_every_kept_node_and_initializer_feeds_a_kept_output(packages):
    model = _model(packages, 'panoptic')
    pruned = prune_outputs(model, ('semantic',))
    graph = pruned.model.graph
    read = {name for node in graph.node for name in node.input} | \
        {value.name for value in graph.output}
    assert all(any(name in read for name in node.output) for node in graph.node)
    assert all(tensor.name in read for tensor in graph.initializer)
    assert pruned.removed_initializers > 0
    assert len(graph.initializer) == len(model.graph.initializer) - pruned.removed_initializers
    # semantic needs no centre threshold: the input goes, and no one may feed it
    assert pruned.inputs == ('image',) and pruned.removed_inputs == ('center_threshold',)
    assert 'center_threshold' in [value.name for value in model.graph.input]  # not changed
    assert {v.name for v in graph.value_info} <= read | \
        {name for node in graph.node for name in node.output}
    onnx.checker.check_model(pruned.model)


def test_center_threshold_stays_while_panoptic_outputs_remain(packages):
    pruned = prune_outputs(_model(packages, 'panoptic'), ('semantic', 'panoptic'))
    assert pruned.inputs == ('image', 'center_threshold') and not pruned.removed_inputs


def test_all_outputs_give_an_equal_copy(packages):
    model = _model(packages, 'panoptic')
    names = [value.name for value in model.graph.output]
    pruned = prune_outputs(model, reversed(names))
    assert pruned.model == model and pruned.model is not model
    assert pruned.summary == 'all outputs kept' and pruned.removed_nodes == 0


def test_unknown_or_missing_names_say_what_is_valid(packages):
    model = _model(packages, 'panoptic')
    with pytest.raises(ValueError, match="unknown graph output.*'confidnce'; valid: semantic, "
                                         'confidence, instance, panoptic, instance_score'):
        prune_outputs(model, ('semantic', 'confidnce'))
    with pytest.raises(PruningError, match="lack 'semantic'"):
        prune_outputs(model, ('panoptic',))
    with pytest.raises(ValueError, match='not the string'):
        check_output_names('semantic', ('semantic',))
    assert check_output_names(['panoptic', 'semantic', 'semantic'],
                              ('semantic', 'confidence', 'panoptic')) == ('semantic', 'panoptic')


def test_names_read_inside_subgraphs_keep_their_producers():
    """An If branch reading an outer tensor: the walk must keep the tensor's producer."""
    from onnx import helper, TensorProto
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [2])
    flag = helper.make_tensor_value_info('flag', TensorProto.BOOL, [])
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])
               for name in ('semantic', 'other')]
    branch_out = helper.make_tensor_value_info('y', TensorProto.FLOAT, [2])
    then_branch = helper.make_graph([helper.make_node('Identity', ['doubled'], ['y'])],
                                    'then', [], [branch_out])
    else_branch = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])],
                                    'else', [], [branch_out])
    graph = helper.make_graph([
        helper.make_node('Add', ['x', 'x'], ['doubled'], name='double'),
        helper.make_node('If', ['flag'], ['semantic'], name='choose', then_branch=then_branch,
                         else_branch=else_branch),
        helper.make_node('Neg', ['x'], ['other'], name='negate'),
    ], 'g', [x, flag], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    pruned = prune_outputs(model, ('semantic',))
    assert [node.name for node in pruned.model.graph.node] == ['double', 'choose']
    session = ort.InferenceSession(pruned.model.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    result = session.run(None, {'x': np.array([1, 2], np.float32), 'flag': np.array(True)})
    np.testing.assert_array_equal(result[0], [2, 4])


def test_external_data_is_read_into_the_pruned_bytes(packages, tmp_path):
    model = _model(packages, 'semantic')
    full, _ = _run(model)
    path = str(tmp_path / 'external.onnx')
    onnx.save_model(model, path, save_as_external_data=True, location='weights.bin',
                    size_threshold=0)  # (moves the weights of ``model`` out, too)
    data = open(path, 'rb').read()
    stored = onnx.load_model_from_string(data).graph.initializer
    assert stored and all(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in stored)
    pruned_bytes, pruned = prune_onnx_bytes(data, ('semantic',), str(tmp_path))
    session = ort.InferenceSession(pruned_bytes, providers=['CPUExecutionProvider'])
    result = session.run(['semantic'], _feeds(session))[0]
    np.testing.assert_array_equal(result, full['semantic'])
    with pytest.raises(PruningError, match='not a valid ONNX model'):
        prune_onnx_bytes(data[:len(data) // 3], ('semantic',))


def test_pruned_file_is_temporary_and_checks_the_checksum(packages):
    import hashlib
    source = os.path.join(packages['panoptic'], 'model.onnx')
    digest = hashlib.sha256(open(source, 'rb').read()).hexdigest()
    before = sorted(os.listdir(packages['panoptic']))
    with pruned_onnx_file(source, WITHOUT_CONFIDENCE, digest) as (path, pruned):
        assert os.path.basename(path) == 'model.pruned.onnx' and os.path.isfile(path)
        assert [value.name for value in onnx.load(path).graph.output] == list(pruned.outputs)
    assert not os.path.exists(path)
    assert sorted(os.listdir(packages['panoptic'])) == before
    with pytest.raises(PruningError, match='changed while loading'):
        with pruned_onnx_file(source, WITHOUT_CONFIDENCE, 'f' * 64):
            pass
