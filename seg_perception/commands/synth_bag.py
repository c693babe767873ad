"""``seg-perception synth-bag``: record synthetic drives as a ROS 2 bag with label topics."""

from __future__ import annotations

import sys
import time

HELP = 'record synthetic drives (images, camera_info, ground-truth labels) as a ROS 2 bag'


def add_arguments(parser) -> None:
    from ..bags.bag_io import DISTRO_CHOICES, STORAGE_CHOICES
    from ..bags.metadata import DISTRO_HELP
    from ..bags.synthetic_bag import IMAGE_CHOICES
    parser.add_argument('--out', required=True, metavar='BAG', help='bag directory to create')
    parser.add_argument('--frames', required=True, type=int, metavar='N',
                        help='frames per camera')
    parser.add_argument('--cameras', type=int, default=1, metavar='K',
                        help='number of cameras cam0..camK-1 (default 1)')
    parser.add_argument('--format', dest='storage', choices=STORAGE_CHOICES, default='mcap',
                        help='bag storage (default mcap)')
    parser.add_argument('--size', default='1024x512', metavar='WxH',
                        help='image size (default 1024x512)')
    parser.add_argument('--fps', type=float, default=10.0, help='frame rate (default 10)')
    parser.add_argument('--seed', type=int, default=0, help='seed of camera 0 (default 0)')
    parser.add_argument('--image-format', choices=IMAGE_CHOICES, default='raw',
                        help='raw rgb8 Image or jpeg/png CompressedImage (default raw)')
    parser.add_argument('--distro', choices=DISTRO_CHOICES, default=None,
                        help='ROS 2 distribution that will read the bag: message definitions '
                        f'and metadata.yaml version ({DISTRO_HELP})')
    parser.add_argument('--cityscapes', metavar='DIR', default=None,
                        help='also write the same frames as a Cityscapes-format folder '
                        '(split val, city = camera name)')


def main(args) -> int:
    from ..bags.bag_io import BagError
    from ..bags.synthetic_bag import write_synthetic_bag
    from .synth import parse_size
    try:
        width, height = parse_size(args.size)
    except ValueError as error:
        print(f'seg-perception synth-bag: error: {error}', file=sys.stderr)
        return 2
    started = time.perf_counter()
    interactive = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if interactive or done == total:
            rate = done / max(time.perf_counter() - started, 1e-9)
            print(f'\rsynth-bag: {done}/{total} frames, {rate:.1f} frames/s', end='',
                  file=sys.stderr, flush=True)

    try:
        summary = write_synthetic_bag(
            args.out, frames=args.frames, cameras=args.cameras, storage=args.storage,
            width=width, height=height, seed=args.seed, fps=args.fps,
            image_format=args.image_format, distro=args.distro,
            cityscapes_dir=args.cityscapes, progress=progress)
    except BagError as error:
        print(f'\nseg-perception synth-bag: error: {error}', file=sys.stderr)
        return 2
    print(file=sys.stderr)
    print(f'wrote {args.out} ({args.storage}): {summary.frames} frames x {args.cameras} '
          f'camera(s) at {width}x{height}')
    for topic, count in sorted(summary.counts.items()):
        print(f'  {topic}: {count}')
    return 0
