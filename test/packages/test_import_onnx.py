"""``seg-perception import onnx``: graphs made by torch's exporters become packages that
predict what the source graph predicts, and bad inputs stop with one line naming the flag.

Each case exports a small random network (``onnx_import_graphs.TinySegNet``), imports it and
compares the package's prediction through ``Segmenter`` (ONNX Runtime) with the source graph
run directly with hand-written preprocessing, torch bilinear upsampling and argmax.
"""

from dataclasses import dataclass, field
import importlib.util
import json
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
import onnx
from onnx_import_graphs import (
    cast_graph,
    export_dynamo,
    export_torchscript,
    leftovers,
    manual_input,
    reference_prediction,
    TinySegNet,
)
import pytest
import torch

from seg_perception.export.tensorrt_check import check_tensorrt_compatibility
from seg_perception.labels import load_label_set
from seg_perception.packages.importers import ModelImportError
from seg_perception.packages.importers.onnx_adapter import Preprocessing
from seg_perception.packages.importers.onnx_import import import_onnx, OnnxImportOptions
from seg_perception.packages.loading import file_sha256, load_model_package
from seg_perception.segmenter import Segmenter

pytestmark = pytest.mark.usefixtures('torch_one_thread')

HAS_ONNXSCRIPT = importlib.util.find_spec('onnxscript') is not None
TORCHVISION_NORM = {'input_range': '0-1', 'mean': (0.485, 0.456, 0.406),
                    'std': (0.229, 0.224, 0.225)}
MMSEG_NORM = {'input_range': '0-255', 'mean': (123.675, 116.28, 103.53),
              'std': (58.395, 57.12, 57.375)}
FIVE_CLASSES = 'five_classes.yaml'
#: Exact agreement of every case, written to $IMPORT_ONNX_AGREEMENT when set.
AGREEMENT: Dict[str, float] = {}


@dataclass(frozen=True)
class Case:
    """One source graph: how it is made and the flags it is imported with."""

    id: str
    net: Dict[str, Any]
    labels: str
    size: Tuple[int, int]  # (width, height)
    opset: Optional[int] = 17  # None: the dynamo exporter
    dynamic: Tuple[int, ...] = ()  # dynamic input axes
    flags: Dict[str, Any] = field(default_factory=dict)
    batch: int = 1

    @property
    def nhwc_in(self) -> bool:
        return bool(self.net.get('nhwc_in'))

    @property
    def kind(self) -> str:
        head = self.net.get('head', 'logits')
        return {'softmax': 'probabilities', 'logits': 'logits'}.get(head, 'class_ids')


CASES = [
    Case('ts11_dynamic_stride8_torchvision', dict(stride=8), 'camvid', (64, 48), opset=11,
         dynamic=(0, 2, 3), flags=dict(TORCHVISION_NORM)),
    Case('ts13_nhwc_bgr_mmseg_stride4', dict(stride=4, nhwc_in=True), 'voc', (56, 40),
         opset=13, flags=dict(MMSEG_NORM, channel_order='bgr')),
    Case('ts11_probabilities_transposed_softmax', dict(stride=4, upsample=True, head='softmax'),
         'camvid', (48, 32), opset=11),
    Case('ts17_probabilities_upsampled_0-1', dict(stride=2, upsample=True, head='softmax'),
         'camvid', (48, 32), flags={'input_range': '0-1'}),
    Case('ts20_argmax_int64_dynamic', dict(stride=4, upsample=True, head='argmax'),
         'cityscapes', (64, 32), opset=20, dynamic=(0, 2, 3)),
    Case('ts17_nhwc_logits_stride16_yaml', dict(stride=16, nhwc_out=True), FIVE_CLASSES,
         (64, 64)),
    Case('ts13_argmax_keepdim_bgr_0-1', dict(stride=2, upsample=True, head='argmax_keepdim'),
         'camvid', (48, 40), opset=13, flags={'channel_order': 'bgr', 'input_range': '0-1'}),
    Case('ts17_aux_head_output_flag', dict(stride=8, aux=True), 'camvid', (64, 48),
         flags={'output': 'out'}),
    Case('ts17_static_batch2', dict(stride=4), 'camvid', (48, 32), batch=2),
    Case('dynamo_dynamic_stride4_torchvision', dict(stride=4), 'camvid', (64, 48), opset=None,
         dynamic=(0, 2, 3), flags=dict(TORCHVISION_NORM)),
    Case('dynamo_nhwc_probabilities', dict(stride=2, upsample=True, head='softmax',
                                          nhwc_in=True), 'voc', (48, 32), opset=None),
]


def _labels_arg(case_labels: str, tmp_path) -> str:
    if case_labels != FIVE_CLASSES:
        return case_labels
    path = tmp_path / FIVE_CLASSES
    classes = [{'name': f'c{i}', 'color': [40 * i, 20, 200 - 30 * i], 'thing': i == 4}
               for i in range(5)]
    path.write_text(json.dumps({'name': 'five', 'classes': classes}))
    return str(path)


def _make_source(case: Case, directory) -> str:
    """The case's network exported to ``directory/source.onnx``."""
    labels = load_label_set(_labels_arg(case.labels, directory))
    width, height = case.size
    rng = np.random.default_rng(1)
    calibration = torch.from_numpy(np.concatenate([
        _source_input(case, rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for _ in range(4)]))
    net = TinySegNet(labels.num_classes, calibration=calibration, **case.net)
    example = calibration[:case.batch]
    path = str(directory / 'source.onnx')
    if case.opset is None:
        if not HAS_ONNXSCRIPT:
            pytest.skip('the dynamo exporter needs onnxscript (requirements.txt, tests)')
        return export_dynamo(net, path, example, case.dynamic)
    outputs = ('out', 'aux') if case.net.get('aux') else ('out',)
    axes = {'input': {a: f'axis{a}' for a in case.dynamic}} if case.dynamic else None
    return export_torchscript(net, path, example, case.opset, outputs, axes)


def _source_input(case: Case, image: np.ndarray) -> np.ndarray:
    """The camera image as the source graph wants it, by hand (``manual_input``)."""
    pre = {k: case.flags[k] for k in ('channel_order', 'input_range', 'mean', 'std')
           if k in case.flags}
    return manual_input(image, layout='nhwc' if case.nhwc_in else 'nchw', **pre)


def _options(labels_arg: str, case_flags: Dict[str, Any],
             input_size: Optional[Tuple[int, int]]) -> OnnxImportOptions:
    flags = dict(case_flags)
    pre = Preprocessing(**{k: flags.pop(k) for k in ('channel_order', 'input_range', 'mean',
                                                     'std') if k in flags})
    return OnnxImportOptions(labels=load_label_set(labels_arg), labels_name=labels_arg,
                             input_size=input_size, preprocessing=pre, **flags)


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_package_predicts_what_the_source_graph_predicts(case, tmp_path):
    source = _make_source(case, tmp_path)
    labels_arg = _labels_arg(case.labels, tmp_path)
    out_dir = str(tmp_path / 'package')
    lines = []
    result = import_onnx(source, out_dir, _options(labels_arg, case.flags,
                                                   case.size if case.dynamic else None),
                         log=lines.append)
    assert result.lines == lines and any('input' in line for line in lines)
    manifest, _ = load_model_package(out_dir)
    width, height = case.size
    assert (manifest.input_width, manifest.input_height, manifest.batch) == \
        (width, height, case.batch)
    assert manifest.info['source']['sha256'] == file_sha256(source)
    assert manifest.info['flags'] == {} and manifest.info['resolved']['labels'] == labels_arg
    assert manifest.opset == 17 and manifest.task == 'semantic'
    assert manifest.info['source']['output_kind'] == case.kind
    assert onnx.load(manifest.onnx_path(out_dir)).ir_version == 8  # as the project's exports
    assert check_tensorrt_compatibility(manifest.onnx_path(out_dir)) == []
    assert result.tensorrt_issues == []

    rng = np.random.default_rng(len(case.id))
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
              for _ in range(case.batch)]
    segmenter = Segmenter.from_package(out_dir, backend='onnxruntime')
    try:
        results = segmenter.segment_batch(images)
    finally:
        segmenter.close()
    source_input = np.concatenate([_source_input(case, image) for image in images])
    kind = case.kind
    reference, confidence = reference_prediction(
        source, source_input, (height, width), case.flags.get('output'),
        bool(case.net.get('nhwc_out')), probabilities=kind == 'probabilities')
    assert len(np.unique(reference)) >= 3, 'a constant map would agree trivially'
    predicted = np.stack([seg.semantic.astype(np.int64) for seg in results])
    equal, total = int((predicted == reference).sum()), reference.size
    same = predicted == reference
    predicted_confidence = np.stack([seg.confidence for seg in results])
    np.testing.assert_allclose(predicted_confidence[same], confidence[same], atol=1e-4)
    agreement = equal / total
    AGREEMENT[case.id] = agreement
    _record(case.id, agreement, equal, total)
    assert agreement >= 0.995, f'{case.id}: {agreement:.5f} of pixels agree'


def _record(case_id: str, agreement: float, equal: int, total: int) -> None:
    print(f'agreement {case_id}: {agreement:.6f} ({equal}/{total} pixels)')
    path = os.environ.get('IMPORT_ONNX_AGREEMENT')
    if path:
        with open(path, 'a', encoding='utf-8') as stream:
            stream.write(f'{case_id} {agreement:.6f} {equal}/{total}\n')


@pytest.mark.parametrize('input_type, output_type, nhwc', [
    ('UINT8', 'FLOAT', True), ('FLOAT16', 'FLOAT16', False), ('DOUBLE', 'DOUBLE', False)])
def test_other_element_types(tmp_path, input_type, output_type, nhwc):
    from onnx import helper, TensorProto
    in_type, out_type = getattr(TensorProto, input_type), getattr(TensorProto, output_type)
    source = cast_graph(str(tmp_path / 'source.onnx'), in_type, out_type, 11, nhwc=nhwc)
    out_dir = str(tmp_path / 'package')
    import_onnx(source, out_dir, _options('camvid', {}, None))
    image = np.random.default_rng(5).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    with Segmenter.from_package(out_dir, backend='onnxruntime') as segmenter:
        predicted = segmenter.segment(image).semantic
    source_input = manual_input(image, layout='nhwc' if nhwc else 'nchw',
                                dtype=helper.tensor_dtype_to_np_dtype(in_type))
    reference, _ = reference_prediction(source, source_input, (32, 48))
    assert len(np.unique(reference)) >= 3
    agreement = float(np.mean(predicted == reference[0]))
    _record(f'helper_{input_type.lower()}_in_{output_type.lower()}_out', agreement,
            int(np.sum(predicted == reference[0])), reference[0].size)
    assert agreement >= 0.995


def test_opset_that_cannot_be_lowered_is_kept_and_reported(tmp_path):
    class GeluNet(torch.nn.Module):  # opset 20's Gelu has no opset-17 form
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 11, 3, stride=2, padding=1)

        def forward(self, x):
            return torch.nn.functional.gelu(self.conv(x))

    source = export_torchscript(GeluNet(), str(tmp_path / 'gelu.onnx'),
                                torch.rand(1, 3, 32, 48) * 255, 20)
    out_dir = str(tmp_path / 'package')
    result = import_onnx(source, out_dir, _options('camvid', {}, None))
    assert result.manifest.opset == 20 and any('opset 20 kept' in x for x in result.lines)
    assert any('opset 20 is outside' in issue for issue in result.tensorrt_issues)
    assert any('Gelu' in issue for issue in result.tensorrt_issues)
    image = np.random.default_rng(6).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    with Segmenter.from_package(out_dir, backend='onnxruntime') as segmenter:
        predicted = segmenter.segment(image).semantic
    reference, _ = reference_prediction(source, manual_input(image), (32, 48))
    assert np.mean(predicted == reference[0]) >= 0.995


def _bad_import(source: str, tmp_path, labels: str = 'camvid', out: str = 'package',
                **flags) -> str:
    """Import that must fail: returns the one-line message after checking nothing was left."""
    out_dir = str(tmp_path / out)
    with pytest.raises(ModelImportError) as raised:
        import_onnx(source, out_dir, _options(labels, flags, flags.pop('input_size', None)))
    message = str(raised.value)
    assert '\n' not in message and message
    assert leftovers(out_dir) == []
    return message


def _small_source(tmp_path, dynamic_axes=None, classes: int = 11, **net) -> str:
    network = TinySegNet(classes, stride=4, **net)
    shape = (1, 32, 48, 3) if net.get('nhwc_in') else (1, 3, 32, 48)
    outputs = ('out', 'aux') if net.get('aux') else ('out',)
    return export_torchscript(network, str(tmp_path / 'source.onnx'), torch.rand(shape), 17,
                              outputs, dynamic_axes)


def test_two_candidate_outputs_name_output(tmp_path):
    message = _bad_import(_small_source(tmp_path, aux=True), tmp_path)
    assert '--output' in message and 'out' in message and 'aux' in message


def test_unknown_output_lists_the_outputs(tmp_path):
    message = _bad_import(_small_source(tmp_path, aux=True), tmp_path, output='logits')
    assert "--output 'logits'" in message and 'out, aux' in message


def test_ambiguous_layout_names_layout(tmp_path):
    axes = {'input': {1: 'channels', 2: 'height', 3: 'width'}}
    message = _bad_import(_small_source(tmp_path, axes), tmp_path, input_size=(48, 32))
    assert '--layout' in message


def test_layout_flag_settles_it(tmp_path):
    axes = {'input': {1: 'channels', 2: 'height', 3: 'width'}}
    source = _small_source(tmp_path, axes)
    result = import_onnx(source, str(tmp_path / 'package'),
                         _options('camvid', {'layout': 'nchw'}, (48, 32)))
    assert result.manifest.info['resolved']['layout'] == 'nchw'


def test_dynamic_size_without_input_size_names_input_size(tmp_path):
    source = _small_source(tmp_path, {'input': {0: 'batch', 2: 'height', 3: 'width'}})
    assert '--input-size' in _bad_import(source, tmp_path)


def test_input_size_cannot_change_a_static_graph(tmp_path):
    message = _bad_import(_small_source(tmp_path), tmp_path, input_size=(64, 64))
    assert '48x32' in message and '--input-size' in message


def test_channel_count_other_than_label_count_names_labels(tmp_path):
    message = _bad_import(_small_source(tmp_path), tmp_path, labels='voc')
    assert '--labels' in message and '11' in message and '21' in message


def test_truncated_file(tmp_path):
    source = _small_source(tmp_path)
    data = open(source, 'rb').read()
    truncated = tmp_path / 'truncated.onnx'
    truncated.write_bytes(data[:len(data) // 2])
    assert 'truncated or corrupt' in _bad_import(str(truncated), tmp_path)


def test_mean_without_std(tmp_path):
    with pytest.raises(ModelImportError, match='--std'):
        Preprocessing(mean=(0.5, 0.5, 0.5))


def test_external_data_is_read_and_recorded(tmp_path):
    source = _small_source(tmp_path)
    model = onnx.load(source)
    external = str(tmp_path / 'external.onnx')
    onnx.save_model(model, external, save_as_external_data=True, location='external.data',
                    size_threshold=0)
    result = import_onnx(external, str(tmp_path / 'package'), _options('camvid', {}, None))
    recorded = result.manifest.info['source']['external_data']
    assert list(recorded) == ['external.data']
    assert recorded['external.data'] == file_sha256(str(tmp_path / 'external.data'))
    with open(tmp_path / 'external.data', 'r+b') as stream:
        stream.truncate(100)
    assert 'external.data is truncated' in _bad_import(external, tmp_path, out='again')


def test_command_line(tmp_path, capsys):
    from seg_perception.cli import main
    source = _small_source(tmp_path, {'input': {0: 'batch', 2: 'height', 3: 'width'}})
    out_dir = str(tmp_path / 'package')
    argv = ['import', 'onnx', source, '--out', out_dir, '--labels', 'camvid',
            '--input-size', '48x32', '--channel-order', 'bgr', '--input-range', '0-1',
            '--mean', '0.485', '0.456', '0.406', '--std', '0.229', '0.224', '0.225',
            '--name', 'tiny']
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert 'layout nchw' in printed and 'TensorRT 8.5 / 10.x: no unsupported nodes' in printed
    manifest, _ = load_model_package(out_dir)
    assert manifest.name == 'tiny'
    assert manifest.info['flags']['mean'] == [0.485, 0.456, 0.406]
    assert manifest.info['flags']['channel_order'] == 'bgr'
    assert manifest.info['flags']['layout'] is None  # not given: inferred
    assert manifest.info['resolved']['layout'] == 'nchw'
    np.testing.assert_allclose(manifest.mean, (0.485, 0.456, 0.406))
    assert main(argv) == 2  # --out is no longer empty
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and '--out' in error


def test_torch_backend_declines_an_imported_graph_so_auto_moves_on(tmp_path):
    from seg_perception.runtime.base import BackendUnavailable
    from seg_perception.runtime.torch_backend import TorchBackend
    from seg_perception.segmenter import Segmenter
    axes = {'input': {1: 'channels', 2: 'height', 3: 'width'}}
    result = import_onnx(_small_source(tmp_path, axes), str(tmp_path / 'package'),
                         _options('camvid', {'layout': 'nchw'}, (48, 32)))
    with pytest.raises(BackendUnavailable, match="architecture 'onnx' has no torch network"):
        TorchBackend(result.manifest, str(tmp_path / 'package'))
    with Segmenter.from_package(str(tmp_path / 'package'), backend='auto') as segmenter:
        assert segmenter.backend.info.name == 'onnxruntime'
