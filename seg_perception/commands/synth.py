"""``seg-perception synth``: write synthetic driving scenes in the Cityscapes folder layout.

Each run is marked incomplete before its first frame and complete after its last
(``data.completion``), so a killed run or a full disk leaves a split that readers refuse.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterator

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
    from ..data.cityscapes_writer import frame_paths
    from . import os_error_line
    problem = _check(args)
    try:
        width, height = parse_size(args.size)
        frame_paths(args.out, args.split, args.city, '000000_000000')
    except ValueError as error:
        problem = problem or str(error)
    if problem:
        print(f'seg-perception synth: error: {problem}', file=sys.stderr)
        return 2
    from ..data.completion import WriteRun
    run = WriteRun(args.split, args.city, args.seed, args.start, args.count)
    written = 0
    try:
        for written in _write_frames(args, run, width, height):
            pass
    except OSError as error:
        marker = run.marker(args.out)
        kept = (f'{written} of {args.count} frames were written and {marker} marks the split '
                'incomplete until the same command is run again' if os.path.isfile(marker)
                else 'nothing was written')
        newline = '\n' if sys.stderr.isatty() else ''
        print(f'{newline}seg-perception synth: error: {os_error_line(error)}; {kept}',
              file=sys.stderr)
        return 1
    print(f'wrote {args.count} frames ({width}x{height}) to {args.out} '
          f'(leftImg8bit/{args.split}/{args.city}, gtFine/{args.split}/{args.city})')
    return 0


def _write_frames(args, run, width: int, height: int) -> Iterator[int]:
    """Mark the run incomplete, write its frames (yielding how many are written after each),
    then mark it complete; an OSError (full or read-only disk) leaves it incomplete."""
    from ..data.cityscapes_writer import write_cityscapes_frame
    from ..data.completion import begin_run, finish_run
    from ..data.synthetic.generator import SceneGenerator
    begin_run(args.out, run)
    generator = SceneGenerator(width=width, height=height, seed=args.seed)
    started = time.perf_counter()
    interactive = sys.stderr.isatty()
    for number, index in enumerate(range(args.start, args.start + args.count), start=1):
        frame = generator.generate(index)
        write_cityscapes_frame(args.out, args.split, args.city,
                               f'{args.seed:06d}_{index:06d}', frame)
        yield number
        elapsed = time.perf_counter() - started
        if interactive or number == args.count or number % 50 == 0:
            line = (f'synth: {number}/{args.count} frames, {number / elapsed:.1f} frames/s, '
                    f'{len(frame.instances)} instances in the last')
            print(('\r' if interactive else '') + line, end='' if interactive else '\n',
                  file=sys.stderr, flush=True)
    if interactive:
        print(file=sys.stderr)
    finish_run(args.out, run)
