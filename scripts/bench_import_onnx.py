#!/usr/bin/env python3
"""Seconds ``seg-perception import onnx`` takes for a large graph with external data.

Builds a segmentation graph of about ``--megabytes`` of float32 weights (a strided stem, a
stack of 3x3 convolutions, a classifier; opset 13, dynamic batch / height / width, all
weights in ``model.onnx.data`` beside ``model.onnx``), imports it with ``--input-size`` and
torchvision normalisation, and prints the import time with the moment each inferred line
was ready, twice: the first run includes importing torch and onnx. Example:

    .venv/bin/python scripts/bench_import_onnx.py --megabytes 40
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))


def build_graph(path: str, megabytes: float, classes: int, opset: int) -> int:
    """Write the graph with external data; returns the weight bytes."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    rng = np.random.default_rng(0)
    width = 256
    per_block = width * width * 9 * 4
    blocks = max(1, int(np.ceil(megabytes * 1e6 / per_block)))
    nodes, weights = [], []

    def conv(name: str, source: str, cin: int, cout: int, kernel: int, stride: int) -> str:
        scale = np.float32(1.0 / np.sqrt(cin * kernel * kernel))
        weights.append(numpy_helper.from_array(
            (rng.standard_normal((cout, cin, kernel, kernel), np.float32) * scale), name + '.w'))
        weights.append(numpy_helper.from_array(np.zeros(cout, np.float32), name + '.b'))
        nodes.append(helper.make_node('Conv', [source, name + '.w', name + '.b'], [name],
                                      name=name, kernel_shape=[kernel, kernel],
                                      strides=[stride, stride], pads=[kernel // 2] * 4))
        nodes.append(helper.make_node('Relu', [name], [name + '.relu']))
        return name + '.relu'

    x = conv('stem', 'input', 3, width, 3, 4)
    for index in range(blocks):
        x = conv(f'block{index}', x, width, width, 3, 1)
    weights.append(numpy_helper.from_array(
        rng.standard_normal((classes, width, 1, 1), np.float32) * 0.1, 'classifier.w'))
    nodes.append(helper.make_node('Conv', [x, 'classifier.w'], ['logits'], name='classifier'))
    graph = helper.make_graph(
        nodes, 'bench',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 3, 'H', 'W'])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', classes, 'h', 'w'])],
        initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = 7
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=os.path.basename(path) + '.data', size_threshold=1024)
    return sum(int(np.prod(w.dims)) * 4 for w in weights)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--megabytes', type=float, default=40.0, help='weights (default: 40)')
    parser.add_argument('--input-size', default='128x64', metavar='WxH')
    parser.add_argument('--opset', type=int, default=13, help='source opset (default: 13)')
    parser.add_argument('--keep', metavar='DIR', help='keep the source and package here')
    args = parser.parse_args()
    from seg_perception.commands import parse_width_height
    from seg_perception.labels import load_label_set
    from seg_perception.packages.importers.onnx_adapter import Preprocessing
    from seg_perception.packages.importers.onnx_import import import_onnx, OnnxImportOptions
    work = args.keep or tempfile.mkdtemp(prefix='bench_import_onnx.')
    os.makedirs(work, exist_ok=True)
    source = os.path.join(work, 'model.onnx')
    start = time.perf_counter()
    weight_bytes = build_graph(source, args.megabytes, 19, args.opset)
    print(f'built {source}: {weight_bytes / 1e6:.1f} MB of weights in '
          f'{source}.data ({time.perf_counter() - start:.1f} s)')
    options = OnnxImportOptions(
        labels=load_label_set('cityscapes'), labels_name='cityscapes',
        input_size=parse_width_height(args.input_size, '--input-size', '128x64'),
        preprocessing=Preprocessing(input_range='0-1', mean=(0.485, 0.456, 0.406),
                                    std=(0.229, 0.224, 0.225)))
    for run in ('first (imports torch and onnx)', 'second (modules loaded)'):
        out_dir = os.path.join(work, f'package_{time.time_ns()}')
        print(f'{run} import:')
        start = time.perf_counter()

        def log(line: str) -> None:
            print(f'  {time.perf_counter() - start:6.2f} s  {line}')

        result = import_onnx(source, out_dir, options, log=log)
        seconds = time.perf_counter() - start
        size = os.path.getsize(result.manifest.onnx_path(out_dir))
        print(f'import: {seconds:.2f} s for {weight_bytes / 1e6:.1f} MB of weights -> '
              f'{out_dir}/model.onnx ({size / 1e6:.1f} MB); TensorRT issues: '
              f'{len(result.tensorrt_issues)}')
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
