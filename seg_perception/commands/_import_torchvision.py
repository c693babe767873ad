"""``seg-perception import torchvision CKPT.pth --arch NAME --out DIR``.

The conversion is ``seg_perception.packages.importers.torchvision``; this module holds the
arguments and the messages only.
"""

from __future__ import annotations

import sys

HELP = ("import a torchvision segmentation checkpoint (FCN, DeepLabv3 or LR-ASPP; "
        "torchvision's published COCO-VOC weights or your own) as a model package")

#: torchvision's builders (``models.torchvision_compat.TORCHVISION_ARCHITECTURES``), listed
#: here so ``--help`` needs no torch.
ARCH_CHOICES = ('fcn_resnet50', 'fcn_resnet101', 'deeplabv3_resnet50', 'deeplabv3_resnet101',
                'deeplabv3_mobilenet_v3_large', 'lraspp_mobilenet_v3_large')


def add_arguments(parser) -> None:
    parser.add_argument('checkpoint', metavar='CKPT',
                        help='torchvision state dict (.pth), e.g. '
                             'deeplabv3_resnet50_coco-cd0a2569.pth')
    parser.add_argument('--arch', required=True, choices=ARCH_CHOICES, metavar='NAME',
                        help='the torchvision builder it belongs to: '
                             + ', '.join(ARCH_CHOICES))
    parser.add_argument('--out', required=True, metavar='DIR',
                        help='package directory to create (must not exist or be empty)')
    parser.add_argument('--input-size', default='512x512', metavar='WxH',
                        help='network input size; multiples of 8 (ResNet) or 16 (MobileNetV3); '
                             'torchvision evaluates at a short side of 520 (default: '
                             '%(default)s)')
    parser.add_argument('--labels', default='voc', metavar='NAME_OR_FILE',
                        help='label set: built-in name or YAML file, with as many classes as '
                             'the checkpoint outputs (default: %(default)s, 21 classes)')
    parser.add_argument('--name', help='package name (default: torchvision_ARCH)')


def main(args) -> int:
    from ..packages.importers import ModelImportError
    from . import parse_width_height
    try:
        size = parse_width_height(args.input_size, '--input-size', '512x512')
        from ..packages.importers.torchvision import check_input_size, import_torchvision
        check_input_size(args.arch, *size)
        manifest = import_torchvision(args.checkpoint, args.arch, args.out, input_size=size,
                                      labels=args.labels, name=args.name)
    except (ModelImportError, ValueError) as error:
        print(f'import torchvision: {error}', file=sys.stderr)
        return 2
    from . import report_tensorrt_check
    print(f'imported {manifest.name} (torchvision {args.arch}, '
          f'{manifest.label_set.num_classes} classes {manifest.label_set.name}, '
          f'{manifest.input_width}x{manifest.input_height}) to {args.out}')
    print(f'  dropped: {manifest.info["dropped"]}')
    report_tensorrt_check(args.out, manifest.onnx_path(args.out))
    return 0
