"""``seg-perception import pytorch-enet CKPT --dataset cityscapes|camvid --out DIR``.

The conversion is ``seg_perception.packages.importers.pytorch_enet``; this module holds the
arguments and the messages only.
"""

from __future__ import annotations

import sys

HELP = ('import a davidtvs/PyTorch-ENet checkpoint (ENet on Cityscapes or CamVid) as a model '
        'package')


def add_arguments(parser) -> None:
    parser.add_argument('checkpoint', metavar='CKPT',
                        help="PyTorch-ENet checkpoint ({'epoch', 'miou', 'state_dict', "
                             "'optimizer'}), e.g. save/ENet_Cityscapes/ENet")
    parser.add_argument('--dataset', required=True, choices=('cityscapes', 'camvid'),
                        help='which of their models it is (20 outputs for cityscapes, 12 for '
                             'camvid, unlabeled included)')
    parser.add_argument('--out', required=True, metavar='DIR',
                        help='package directory to create (must not exist or be empty)')
    parser.add_argument('--input-size', metavar='WxH',
                        help='network input size, multiples of 8 (default: 1024x512 for '
                             'cityscapes, 480x360 for camvid)')
    parser.add_argument('--name', help='package name (default: pytorch_enet_DATASET)')


def main(args) -> int:
    from ..packages.importers import ModelImportError
    from . import parse_width_height
    try:
        size = None
        if args.input_size:
            size = parse_width_height(args.input_size, '--input-size', '1024x512')
        from ..packages.importers.pytorch_enet import import_pytorch_enet
        manifest = import_pytorch_enet(args.checkpoint, args.dataset, args.out,
                                       input_size=size, name=args.name)
    except (ModelImportError, ValueError) as error:
        print(f'import pytorch-enet: {error}', file=sys.stderr)
        return 2
    from . import report_tensorrt_check
    info = manifest.info
    print(f'imported {manifest.name} (PyTorch-ENet ENet, {args.dataset}, '
          f'{manifest.label_set.num_classes} classes, {manifest.input_width}x'
          f'{manifest.input_height}; checkpoint epoch {info.get("source_epoch")}, mIoU '
          f'{info.get("source_miou")}) to {args.out}')
    print(f'  {info["unlabeled"]}')
    report_tensorrt_check(args.out, manifest.onnx_path(args.out))
    return 0
