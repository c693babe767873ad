"""``seg-perception export``: export a registered network to a model package (ONNX + manifest)."""

from __future__ import annotations

import sys

HELP = 'export a model to ONNX with fused post-processing, plus manifest and weights'


def add_arguments(parser) -> None:
    parser.add_argument('--model', required=True, metavar='NAME',
                        help='registered architecture (see seg-perception models)')
    parser.add_argument('--tasks', default='semantic', metavar='TASK',
                        help='semantic or panoptic (default: %(default)s)')
    parser.add_argument('--height', type=int, required=True, help='network input height')
    parser.add_argument('--width', type=int, required=True, help='network input width')
    parser.add_argument('--weights', metavar='FILE',
                        help='torch state dict (.pt); without it the network is randomly '
                             'initialised (useful only for speed tests)')
    parser.add_argument('--batch', type=int, default=1, help='static batch size (default: 1)')
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument('--labels', metavar='NAME|YAML',
                        help='label set: a built-in name (cityscapes, voc, camvid, ade20k) or '
                        'a YAML file (default: cityscapes)')
    labels.add_argument('--num-classes', type=int, metavar='N',
                        help='generic label set class_0..class_N-1 (semantic only, no things)')
    parser.add_argument('--fp16-weights', action='store_true',
                        help='store weights.pt in float16 (half the size)')
    parser.add_argument('--flip-test', action='store_true',
                        help='average the semantic logits with those of the mirrored image '
                        '(the network runs on a batch of 2: better maps, about twice the '
                        'network time)')
    parser.add_argument('--name', help='package name (default: MODEL_TASK)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random initialisation (default: %(default)s)')
    parser.add_argument('--out', required=True, metavar='DIR', help='package directory')


def _label_set(args):
    from ..labels import cityscapes, LabelSet, load_label_set
    if args.labels:
        return load_label_set(args.labels)
    if args.num_classes is None:
        return cityscapes()
    if not 1 <= args.num_classes <= 254:
        raise ValueError(f'--num-classes {args.num_classes} must be in 1..254')
    palette = cityscapes().colors
    return LabelSet(name=f'generic{args.num_classes}',
                    names=tuple(f'class_{i}' for i in range(args.num_classes)),
                    colors=tuple(palette[i % len(palette)] for i in range(args.num_classes)),
                    thing_ids=())


def _validate(args, spec, label_set) -> None:
    from ..manifest import TASK_CHOICES
    if args.tasks not in TASK_CHOICES:
        raise ValueError(f'--tasks {args.tasks!r} is not one of {", ".join(TASK_CHOICES)}')
    divisor = spec.size_divisor
    for flag, value in (('--height', args.height), ('--width', args.width)):
        if value <= 0 or value % divisor:
            lower = max(divisor, value // divisor * divisor)
            raise ValueError(
                f'{flag} {value} must be a positive multiple of {divisor} (size_divisor of '
                f'{spec.name}); try {lower} or {lower + divisor}')
    if args.batch <= 0:
        raise ValueError(f'--batch {args.batch} must be positive')
    if args.tasks == 'panoptic' and not label_set.thing_ids:
        raise ValueError(
            f'panoptic export needs thing classes, label set {label_set.name!r} has none; '
            'give --labels with "thing: true" classes')


def main(args) -> int:
    import torch

    from ..export.graph import ExportError
    from ..export.onnx_export import describe_graph, export_model_package
    from ..labels import LabelSetError
    from ..manifest import ManifestError, ModelManifest
    from ..models import build_model, get_model_spec, UnknownModelError
    from ..packages.loading import file_sha256, load_state_dict_into, PackageError, read_state_dict
    from . import report_tensorrt_check

    try:
        spec = get_model_spec(args.model)
        label_set = _label_set(args)
        _validate(args, spec, label_set)
        torch.manual_seed(args.seed)
        network = build_model(args.model, num_classes=label_set.num_classes,
                              panoptic=args.tasks == 'panoptic')
        info = {}
        if args.weights:
            load_state_dict_into(network, read_state_dict(args.weights), args.weights)
            info['weights'] = f'{args.weights}'
            info['weights_source_sha256'] = file_sha256(args.weights)
        else:
            info['weights'] = f'RANDOM INITIALISATION (seed {args.seed}), untrained'
            print(f'WARNING: no --weights given: {args.model} is RANDOMLY INITIALISED; its '
                  'output is meaningless (fine for speed tests only)', file=sys.stderr)
        manifest = ModelManifest(
            name=args.name or f'{args.model}_{args.tasks}', architecture=args.model,
            task=args.tasks, input_height=args.height, input_width=args.width,
            batch=args.batch, label_set=label_set, flip_test=args.flip_test, info=info)
        manifest = export_model_package(network, manifest, args.out,
                                        fp16_weights=args.fp16_weights)
    except (ValueError, UnknownModelError, ManifestError, LabelSetError, PackageError,
            ExportError) as error:
        print(f'export: {error}', file=sys.stderr)
        return 2
    except OSError as error:  # a full or read-only disk: export_model_package changed nothing
        from . import os_error_line
        print(f'export: {os_error_line(error)}; {args.out} was left as it was', file=sys.stderr)
        return 1
    print(f'exported {manifest.name} ({args.model}, {args.tasks}, {args.width}x{args.height}, '
          f'batch {args.batch}, {label_set.num_classes} classes) to {args.out}')
    for line in describe_graph(manifest):
        print(f'  {line}')
    print(f'  onnx sha256 {manifest.onnx_sha256}')
    report_tensorrt_check(args.out, manifest.onnx_path(args.out))
    return 0
