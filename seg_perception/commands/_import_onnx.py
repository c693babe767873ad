"""``seg-perception import onnx MODEL.onnx --out DIR --labels NAME_OR_FILE [...]``.

The conversion is ``seg_perception.packages.importers.onnx_import``; this module holds the
arguments and the messages only.
"""

from __future__ import annotations

import sys

HELP = ('import any semantic segmentation ONNX graph (logits, probabilities or class ids) as '
        'a model package')

#: ``labels.LABEL_SET_NAMES``, listed here so ``--help`` needs no import.
LABEL_CHOICES = ('cityscapes', 'voc', 'camvid', 'ade20k')


def add_arguments(parser) -> None:
    parser.add_argument('model', metavar='MODEL.onnx',
                        help='ONNX file (external data files beside it)')
    parser.add_argument('--out', required=True, metavar='DIR',
                        help='package directory to create (must not exist or be empty)')
    parser.add_argument('--labels', required=True, metavar='NAME_OR_FILE',
                        help=f'label set of the model\'s classes: {", ".join(LABEL_CHOICES)} or '
                             'a YAML file')
    parser.add_argument('--input-size', metavar='WxH',
                        help='network input size; required when the graph leaves height or '
                             'width dynamic')
    parser.add_argument('--layout', choices=('nchw', 'nhwc'),
                        help='input layout, when its shape does not tell')
    parser.add_argument('--channel-order', choices=('rgb', 'bgr'),
                        help='channel order the model was trained on (default: rgb)')
    parser.add_argument('--input-range', choices=('0-255', '0-1'),
                        help='pixel scale before normalisation (default: 0-255)')
    parser.add_argument('--mean', type=float, nargs=3, metavar=('R', 'G', 'B'),
                        help='per-channel mean in RGB order on the --input-range scale '
                             '(torchvision: 0.485 0.456 0.406 with 0-1; mmsegmentation: '
                             '123.675 116.28 103.53 with 0-255); default: none')
    parser.add_argument('--std', type=float, nargs=3, metavar=('R', 'G', 'B'),
                        help='per-channel std, like --mean (torchvision: 0.229 0.224 0.225; '
                             'mmsegmentation: 58.395 57.12 57.375)')
    parser.add_argument('--output', metavar='NAME',
                        help='the segmentation output, when the graph has several')
    parser.add_argument('--name', help='package name (default: the file name)')


def _options(args):
    from ..labels import load_label_set
    from ..packages.importers.onnx_adapter import Preprocessing
    from ..packages.importers.onnx_import import OnnxImportOptions
    from . import parse_width_height
    size = parse_width_height(args.input_size, '--input-size', '1024x512') \
        if args.input_size else None
    # As given (None: not given); the manifest's ``resolved`` has the values used.
    flags = {'labels': args.labels, 'input_size': args.input_size, 'layout': args.layout,
             'channel_order': args.channel_order, 'input_range': args.input_range,
             'mean': args.mean, 'std': args.std, 'output': args.output, 'name': args.name}
    preprocessing = Preprocessing(
        channel_order=args.channel_order or 'rgb', input_range=args.input_range or '0-255',
        mean=tuple(args.mean) if args.mean else None, std=tuple(args.std) if args.std else None)
    return OnnxImportOptions(labels=load_label_set(args.labels), labels_name=args.labels,
                             input_size=size, layout=args.layout, preprocessing=preprocessing,
                             output=args.output, name=args.name, flags=flags)


def main(args) -> int:
    from ..packages.importers import ModelImportError
    try:
        from ..packages.importers.onnx_import import import_onnx
        result = import_onnx(args.model, args.out, _options(args),
                             log=lambda line: print(f'  {line}'))
    except (ModelImportError, ValueError) as error:  # LabelSetError is a ValueError
        print(f'import onnx: {error}', file=sys.stderr)
        return 2
    manifest = result.manifest
    print(f'imported {manifest.name} ({manifest.label_set.num_classes} classes '
          f'{manifest.label_set.name}, {manifest.input_width}x{manifest.input_height}, batch '
          f'{manifest.batch}) to {args.out} in {result.seconds:.1f} s')
    print(f'  onnx sha256 {manifest.onnx_sha256}')
    if result.tensorrt_issues:
        print(f'WARNING: {len(result.tensorrt_issues)} TensorRT compatibility issue(s):',
              file=sys.stderr)
        for issue in result.tensorrt_issues:
            print(f'  {issue}', file=sys.stderr)
    else:
        print('  TensorRT 8.5 / 10.x: no unsupported nodes')
    return 0
