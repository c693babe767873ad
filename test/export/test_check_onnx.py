"""TensorRT compatibility checker: hand-built bad graphs are flagged, real exports pass."""


import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import pytest

from seg_perception.cli import main as cli_main
from seg_perception.export.tensorrt_check import (
    check_tensorrt_compatibility,
    format_report,
    Issue,
    normalize_trt_versions,
    OnnxCheckError,
)

FLOAT = TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, 'g', inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    onnx.checker.check_model(model)
    return model


def _tensor(name, elem_type=FLOAT, shape=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, elem_type, list(shape))


def _only(issues, op_type):
    found = [i for i in issues if i.op_type == op_type]
    assert found, f'no {op_type} issue in {[str(i) for i in issues]}'
    return found


def test_clean_graph_has_no_issues():
    model = _model(
        [helper.make_node('MaxPool', ['x'], ['p'], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node('ArgMax', ['p'], ['a'], axis=1, keepdims=0),
         helper.make_node('Cast', ['a'], ['y'], to=TensorProto.INT32)],
        [_tensor('x')], [_tensor('y', TensorProto.INT32, (1, 8, 8))])
    assert check_tensorrt_compatibility(model) == []


def test_max_unpool_is_flagged_for_both_versions():
    model = _model(
        [helper.make_node('MaxPool', ['x'], ['p', 'i'], kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node('MaxUnpool', ['p', 'i'], ['y'], kernel_shape=[2, 2], strides=[2, 2])],
        [_tensor('x')], [_tensor('y')])
    issues = check_tensorrt_compatibility(model)
    unpool = _only(issues, 'MaxUnpool')
    assert unpool[0].trt_versions == ('8.5', '10')
    assert 'not supported' in unpool[0].reason
    pool = _only(issues, 'MaxPool')
    assert 'Indices output' in pool[0].reason


def test_max_pool_indices_used_as_output():
    model = _model(
        [helper.make_node('MaxPool', ['x'], ['y', 'idx'], kernel_shape=[2, 2], strides=[2, 2])],
        [_tensor('x')], [_tensor('y', shape=(1, 3, 4, 4)),
                         _tensor('idx', TensorProto.INT64, (1, 3, 4, 4))])
    issues = check_tensorrt_compatibility(model)
    assert any('Indices output' in i.reason for i in _only(issues, 'MaxPool'))
    assert any('INT64' in i.reason for i in _only(issues, 'graph output'))


def _resize(mode, coordinate_mode='half_pixel'):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), 'scales')
    return _model(
        [helper.make_node('Resize', ['x', '', 'scales'], ['y'], mode=mode,
                          coordinate_transformation_mode=coordinate_mode)],
        [_tensor('x')], [_tensor('y', shape=(1, 3, 16, 16))], [scales])


def test_cubic_resize_is_flagged_linear_is_not():
    issues = check_tensorrt_compatibility(_resize('cubic'))
    resize = _only(issues, 'Resize')
    assert "mode 'cubic'" in resize[0].reason and resize[0].trt_versions == ('8.5', '10')
    assert check_tensorrt_compatibility(_resize('linear')) == []
    assert check_tensorrt_compatibility(_resize('nearest')) == []


def test_resize_coordinate_mode_tf_crop_and_resize_is_flagged():
    issues = check_tensorrt_compatibility(_resize('linear', 'tf_crop_and_resize'))
    assert 'coordinate_transformation_mode' in _only(issues, 'Resize')[0].reason


def test_topk_with_dynamic_k_is_flagged():
    model = _model(
        [helper.make_node('TopK', ['x', 'k'], ['v', 'i'], axis=1)],
        [_tensor('x', shape=(1, 64)), _tensor('k', TensorProto.INT64, (1,))],
        [_tensor('v', shape=(1, 5)), _tensor('i', TensorProto.INT64, (1, 5))])
    issues = check_tensorrt_compatibility(model)
    topk = _only(issues, 'TopK')
    assert 'not a constant' in topk[0].reason and topk[0].trt_versions == ('8.5', '10')


def test_topk_with_constant_k_passes_and_too_large_k_is_flagged():
    def topk_model(k):
        k_init = numpy_helper.from_array(np.array([k], dtype=np.int64), 'k')
        return _model(
            [helper.make_node('TopK', ['x', 'k'], ['v', 'i'], axis=1),
             helper.make_node('Cast', ['i'], ['i32'], to=TensorProto.INT32)],
            [_tensor('x', shape=(1, 5000))],
            [_tensor('v', shape=(1, k)), _tensor('i32', TensorProto.INT32, (1, k))], [k_init])
    assert check_tensorrt_compatibility(topk_model(200)) == []
    issues = check_tensorrt_compatibility(topk_model(4000))
    assert 'K < 3840' in _only(issues, 'TopK')[0].reason


def test_int64_output_and_dynamic_input_are_flagged():
    model = _model(
        [helper.make_node('ArgMax', ['x'], ['y'], axis=1, keepdims=0)],
        [_tensor('x', shape=('batch', 3, 8, 8))],
        [_tensor('y', TensorProto.INT64, ('batch', 8, 8))])
    issues = check_tensorrt_compatibility(model)
    output = _only(issues, 'graph output')
    assert any('INT64' in i.reason and i.trt_versions == ('8.5', '10') for i in output)
    assert any('dynamic' in i.reason for i in _only(issues, 'graph input'))


def test_bool_output_is_flagged_for_8_5_only():
    model = _model([helper.make_node('Greater', ['x', 'x'], ['y'])],
                   [_tensor('x')], [_tensor('y', TensorProto.BOOL)])
    issues = check_tensorrt_compatibility(model)
    assert [i.trt_versions for i in issues] == [('8.5',)]
    assert check_tensorrt_compatibility(model, trt_versions='10') == []


def test_unknown_op_custom_domain_and_opset():
    model = _model([helper.make_node('Col2Im', ['x', 's', 'b'], ['y'])],
                   [_tensor('x', shape=(1, 4, 4)), _tensor('s', TensorProto.INT64, (2,)),
                    _tensor('b', TensorProto.INT64, (2,))],
                   [_tensor('y', shape=(1, 1, 4, 4))], opset=18)
    issues = check_tensorrt_compatibility(model)
    assert any('not in the onnx-tensorrt operator support matrix' in i.reason
               for i in _only(issues, 'Col2Im'))
    opset_issues = _only(issues, 'opset')
    assert [i.trt_versions for i in opset_issues] == [('8.5',)]
    custom = helper.make_model(
        helper.make_graph([helper.make_node('Fancy', ['x'], ['y'], domain='com.example')], 'g',
                          [_tensor('x')], [_tensor('y')]),
        opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('com.example', 1)])
    assert 'plugin' in _only(check_tensorrt_compatibility(custom), 'Fancy')[0].reason


def test_data_dependent_ops_scatter_reduction_and_type_checks():
    indices = numpy_helper.from_array(np.zeros((1, 1), dtype=np.int64), 'idx')
    updates = numpy_helper.from_array(np.zeros((1, 8), dtype=np.float32), 'upd')
    model = _model(
        [helper.make_node('NonZero', ['x'], ['nz']),
         helper.make_node('ScatterND', ['x', 'idx', 'upd'], ['s'], reduction='add'),
         helper.make_node('Cast', ['s'], ['si'], to=TensorProto.INT32),
         helper.make_node('ReduceMax', ['si'], ['y'], keepdims=0)],
        [_tensor('x', shape=(2, 8))], [_tensor('y', TensorProto.INT32, ())],
        [indices, updates])
    issues = check_tensorrt_compatibility(model)
    assert 'depends on the data' in _only(issues, 'NonZero')[0].reason
    assert "reduction 'add'" in _only(issues, 'ScatterND')[0].reason
    reduce_max = _only(issues, 'ReduceMax')
    assert reduce_max[0].trt_versions == ('8.5',) and 'I32' in reduce_max[0].reason


def test_version_parsing_and_errors(tmp_path):
    assert normalize_trt_versions('8.5,10.3') == ('8.5', '10')
    assert normalize_trt_versions(['10.x']) == ('10',)
    with pytest.raises(OnnxCheckError, match='valid: 8.5, 10'):
        normalize_trt_versions('7.1')
    with pytest.raises(OnnxCheckError, match='does not exist'):
        check_tensorrt_compatibility(str(tmp_path / 'missing.onnx'))
    bad = tmp_path / 'bad.onnx'
    bad.write_bytes(b'not a protobuf at all \xff\xfe')
    with pytest.raises(OnnxCheckError, match='not a readable ONNX model'):
        check_tensorrt_compatibility(str(bad))


def test_report_format():
    issue = Issue('up', 'MaxUnpool', ('8.5', '10'), 'operator is not supported')
    report = format_report([issue], 'm.onnx', ('8.5', '10'))
    assert '1 issue' in report and '[TensorRT 8.5/10] MaxUnpool up' in report
    assert 'OK' in format_report([], 'm.onnx', '10')


def test_cli_exit_status(tmp_path, capsys):
    good = tmp_path / 'good.onnx'
    onnx.save(_resize('linear'), str(good))
    bad = tmp_path / 'bad.onnx'
    onnx.save(_resize('cubic'), str(bad))
    assert cli_main(['check-onnx', str(good)]) == 0
    assert 'OK for TensorRT 8.5, 10' in capsys.readouterr().out
    assert cli_main(['check-onnx', str(bad), '--trt', '10']) == 1
    assert "mode 'cubic'" in capsys.readouterr().out
    assert cli_main(['check-onnx', str(tmp_path / 'none.onnx')]) == 2
    assert 'does not exist' in capsys.readouterr().err


# Every registered model passing the check is part of test_model_contract.py.
