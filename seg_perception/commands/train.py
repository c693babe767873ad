"""``seg-perception train``: train a registered architecture and export a model package."""

from __future__ import annotations

import os
import shlex
import sys

HELP = 'train a model on synthetic scenes or a Cityscapes-format folder, then export it'


def add_arguments(parser) -> None:
    from ..training.config import TrainConfig
    defaults = TrainConfig(model='enet')
    parser.add_argument('--model', required=True, help='architecture (seg-perception models)')
    parser.add_argument('--tasks', dest='task', choices=('semantic', 'panoptic'),
                        default=defaults.task, help='heads to train (default %(default)s)')
    parser.add_argument('--data', default=defaults.data,
                        help='"synthetic" or a Cityscapes-format root (leftImg8bit/, gtFine/)')
    parser.add_argument('--out', required=True, help='output directory (checkpoints, log, '
                        'model package in OUT/model)')
    parser.add_argument('--height', type=int, default=defaults.height)
    parser.add_argument('--width', type=int, default=defaults.width)
    parser.add_argument('--crop', metavar='WxH', default='',
                        help='training crop size (default: the network size); validation and '
                        'export use --width x --height')
    parser.add_argument('--epochs', type=int, default=defaults.epochs)
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size,
                        help='global batch, split evenly over the processes of a torchrun job '
                        '(default %(default)s)')
    parser.add_argument('--lr', type=float, default=defaults.lr,
                        help='learning rate of the global batch (default %(default)s)')
    parser.add_argument('--train-frames', type=int, default=defaults.train_frames,
                        help='synthetic frames per epoch (default %(default)s)')
    parser.add_argument('--val-frames', type=int, default=defaults.val_frames,
                        help='held-out frames per validation (default %(default)s)')
    parser.add_argument('--val-every', type=int, default=defaults.val_every)
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--workers', type=int, default=defaults.workers)
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default=defaults.device)
    parser.add_argument('--hard-pixel-ratio', type=float, default=defaults.hard_pixel_ratio)
    parser.add_argument('--small-instance-area', type=int, default=defaults.small_instance_area)
    parser.add_argument('--min-scale', type=float, default=defaults.min_scale)
    parser.add_argument('--max-scale', type=float, default=defaults.max_scale)
    parser.add_argument('--class-balanced-crops', type=float,
                        default=defaults.class_balanced_crops, metavar='P',
                        help='chance that a crop is placed over a class drawn uniformly from '
                        'those in the frame, so rare classes are seen often (default '
                        '%(default)s)')
    parser.add_argument('--mixed-precision', choices=('auto', 'bf16', 'off'),
                        default=defaults.mixed_precision,
                        help='bfloat16 autocast: auto = on CUDA and on CPUs with native '
                        'bfloat16 (AMX / AVX512-BF16) (default %(default)s)')
    parser.add_argument('--frame-cache', nargs='?', const='', default=None, metavar='DIR',
                        help='generate the synthetic training frames once into DIR '
                        '(default OUT/frame_cache; fast GPU training) instead of every epoch')
    parser.add_argument('--max-minutes', type=float, default=0.0,
                        help='stop after the epoch in which this many minutes have passed, '
                        'then validate and export (default: no limit)')
    parser.add_argument('--channels-last', action='store_true',
                        help='train in channels-last (NHWC) memory layout: faster for some '
                        'networks on oneDNN CPUs and tensor-core GPUs (ENet steps 1.34x faster on '
                        'an AMX CPU); the exported package is the same')
    start = parser.add_mutually_exclusive_group()
    start.add_argument('--init-weights', default='', metavar='PATH',
                       help='start from these weights: a .pt state dict, a checkpoint, or a '
                       'model package / zoo model directory (fine-tuning; a package without '
                       'weights.pt gives the weights of its ONNX graph)')
    start.add_argument('--backbone-weights', default='', metavar='FILE',
                       help="start the encoder from torchvision's ImageNet checkpoint FILE "
                       '(resnet18-f37072fd.pth, resnet50-0676ba61.pth, '
                       "mobilenet_v3_large-8738ca79.pth...) matching the model's backbone; "
                       'decoder and heads start random')
    parser.add_argument('--init-partial', action='store_true',
                        help='with --init-weights: load only the tensors whose names and shapes '
                        'match (after a head change); at least half must match')
    parser.add_argument('--resume', action='store_true',
                        help='continue from OUT/checkpoints/last.pt (written by any number of '
                        'processes)')
    parser.add_argument('--nproc', '--gpus', dest='nproc', type=int, default=0, metavar='N',
                        help='data-parallel on N processes of this machine: relaunches itself '
                        'under "python -m torch.distributed.run --standalone '
                        '--nproc_per_node=N" (one per GPU with --device cuda; gloo on the CPU)')
    parser.add_argument('--no-sync-batchnorm', dest='sync_batchnorm', action='store_false',
                        help="with several processes, BatchNorm statistics of each process's "
                        'slice of the batch instead of the whole global batch')


def _torchrun(nproc: int, argv) -> int:
    """Run this command again under torchrun with ``nproc`` processes; its exit status."""
    import subprocess
    words, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word in ('--nproc', '--gpus'):
            skip = True
        elif not word.startswith(('--nproc=', '--gpus=')):
            words.append(word)
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               f'--nproc_per_node={nproc}', '-m', 'seg_perception.cli'] + words
    print('launching: ' + shlex.join(command), file=sys.stderr)
    return subprocess.call(command)


def main(args) -> int:
    from ..models import UnknownModelError
    from ..training.config import TrainConfig, TrainingError
    from ..training.loop import train
    for name in ('epochs', 'batch_size', 'train_frames', 'val_frames', 'height', 'width'):
        if getattr(args, name) <= 0:
            print(f'error: --{name.replace("_", "-")} must be positive', file=sys.stderr)
            return 2
    if args.nproc < 0:
        print('error: --nproc must be positive', file=sys.stderr)
        return 2
    if args.nproc and 'RANK' not in os.environ:
        if args.batch_size % args.nproc:
            print(f'error: --batch-size {args.batch_size} is the global batch and must be a '
                  f'multiple of --nproc {args.nproc}', file=sys.stderr)
            return 2
        return _torchrun(args.nproc, sys.argv[1:])
    if not 0.0 < args.hard_pixel_ratio <= 1.0:
        print('error: --hard-pixel-ratio must be in (0, 1]', file=sys.stderr)
        return 2
    if not 0.0 <= args.class_balanced_crops <= 1.0:
        print('error: --class-balanced-crops must be in [0, 1]', file=sys.stderr)
        return 2
    if args.init_partial and not args.init_weights:
        print('error: --init-partial needs --init-weights', file=sys.stderr)
        return 2
    crop_width = crop_height = 0
    if args.crop:
        from . import parse_width_height
        try:
            crop_width, crop_height = parse_width_height(args.crop, '--crop', '512x256')
        except ValueError as error:
            print(f'error: {error}', file=sys.stderr)
            return 2
    config = TrainConfig(
        model=args.model, task=args.task, data=args.data, height=args.height, width=args.width,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        train_frames=args.train_frames, val_frames=args.val_frames, val_every=args.val_every,
        seed=args.seed, workers=args.workers, device=args.device,
        hard_pixel_ratio=args.hard_pixel_ratio, small_instance_area=args.small_instance_area,
        min_scale=args.min_scale, max_scale=args.max_scale,
        class_balanced_crops=args.class_balanced_crops, mixed_precision=args.mixed_precision,
        max_minutes=args.max_minutes, init_weights=args.init_weights,
        init_partial=args.init_partial, backbone_weights=args.backbone_weights,
        channels_last=args.channels_last, sync_batchnorm=args.sync_batchnorm,
        crop_height=crop_height, crop_width=crop_width,
        frame_cache='' if args.frame_cache is None else (
            args.frame_cache or os.path.join(args.out, 'frame_cache')))
    command = 'seg-perception ' + ' '.join(shlex.quote(a) for a in sys.argv[1:])
    try:
        package, result = train(config, args.out, resume=args.resume, command_line=command)
    except (TrainingError, UnknownModelError, ValueError, RuntimeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    except OSError as error:  # a full or read-only disk; every file is written atomically
        from . import os_error_line
        checkpoint = os.path.join(args.out, 'checkpoints', 'last.pt')
        kept = (f'{checkpoint} keeps the last finished epoch (run again with --resume once '
                'there is room)' if os.path.isfile(checkpoint) else 'no checkpoint was written')
        print(f'error: {os_error_line(error)}; {kept}', file=sys.stderr)
        return 1
    if os.environ.get('RANK', '0') == '0':
        print(f'model package: {package}  mIoU {result.miou:.4f}  PQ {result.pq:.4f}')
    return 0
