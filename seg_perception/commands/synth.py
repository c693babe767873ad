"""``seg-perception synth``: write synthetic driving scenes in the Cityscapes folder layout."""

from __future__ import annotations

import sys
import time

HELP = 'generate synthetic driving scenes with panoptic labels in the Cityscapes layout'


def add_arguments(parser) -> None:
    parser.add_argument('--out', required=True, metavar='DIR', help='dataset root to write')
    parser.add_argument('--count', required=True, type=int, metavar='N',
                        help='number of frames')
    parser.add_argument('--seed', type=int, default=0, metavar='S',
                        help='generator seed, 0..999999; it is also the Cityscapes sequence '
                        'number in the file names (default 0)')
    parser.add_argument('--start', type=int, default=0, metavar='I',
                        help='index of the first frame (default 0)')
    parser.add_argument('--size', default='1024x512', metavar='WxH',
                        help='image size (default 1024x512)')
    parser.add_argument('--split', default='train', choices=('train', 'val', 'test'),
                        help='Cityscapes split folder (default train)')
    parser.add_argument('--city', default='synth', metavar='NAME',
                        help='city folder name: lower case, no "_" (default synth)')


def parse_size(text: str):
    """``'1024x512'`` -> (1024, 512); a clear ``ValueError`` otherwise."""
    from ..data.synthetic.generator import MAX_SIZE, MIN_SIZE
    from . import parse_width_height
    width, height = parse_width_height(text, '--size', '1024x512')
    for name, value in (('width', width), ('height', height)):
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise ValueError(f'--size {text!r}: {name} {value} is outside {MIN_SIZE}..{MAX_SIZE}')
    return width, height


def _check(args) -> str:
    """An error message for bad arguments, or '' when they are fine."""
    if args.count < 1:
        return f'--count must be at least 1, got {args.count}'
    if not 0 <= args.seed <= 999999:
        return f'--seed must be in 0..999999 (it becomes the 6-digit sequence), got {args.seed}'
    if args.start < 0 or args.start + args.count - 1 > 999999:
        return (f'--start {args.start} with --count {args.count} must keep frame indices in '
                '0..999999 (6-digit Cityscapes frame numbers)')
    return ''


def main(args) -> int:
    from ..data.cityscapes_writer import frame_paths, write_cityscapes_frame
    from ..data.synthetic.generator import SceneGenerator
    problem = _check(args)
    try:
        width, height = parse_size(args.size)
        frame_paths(args.out, args.split, args.city, '000000_000000')
    except ValueError as error:
        problem = problem or str(error)
    if problem:
        print(f'seg-perception synth: error: {problem}', file=sys.stderr)
        return 2
    generator = SceneGenerator(width=width, height=height, seed=args.seed)
    started = time.perf_counter()
    interactive = sys.stderr.isatty()
    for number, index in enumerate(range(args.start, args.start + args.count), start=1):
        frame = generator.generate(index)
        write_cityscapes_frame(args.out, args.split, args.city,
                               f'{args.seed:06d}_{index:06d}', frame)
        elapsed = time.perf_counter() - started
        if interactive or number == args.count or number % 50 == 0:
            line = (f'synth: {number}/{args.count} frames, {number / elapsed:.1f} frames/s, '
                    f'{len(frame.instances)} instances in the last')
            print(('\r' if interactive else '') + line, end='' if interactive else '\n',
                  file=sys.stderr, flush=True)
    if interactive:
        print(file=sys.stderr)
    print(f'wrote {args.count} frames ({width}x{height}) to {args.out} '
          f'(leftImg8bit/{args.split}/{args.city}, gtFine/{args.split}/{args.city})')
    return 0
