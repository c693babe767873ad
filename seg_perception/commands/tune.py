"""``seg-perception tune``: search a panoptic model's post-processing settings for PQ."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

HELP = ("search a panoptic model's post-processing settings (centre threshold, NMS, areas) "
        'on validation frames and write the tuned package')


def add_arguments(parser) -> None:
    from ..data.synthetic import SYNTHETIC_VALIDATION_SEED
    from ..training.tuning import SEARCH_SPACE
    parser.add_argument('--model', required=True, help='zoo name or model-package directory')
    parser.add_argument('--data', default='synthetic',
                        help='"synthetic" or a Cityscapes-format root (leftImg8bit/, gtFine/); '
                        'frames are resized to the network size')
    parser.add_argument('--split', default='val',
                        help='split of a Cityscapes-format root (default %(default)s)')
    parser.add_argument('--frames', type=int, default=40,
                        help='frames to tune on; 0 = the whole split (default %(default)s)')
    parser.add_argument('--seed', type=int, default=SYNTHETIC_VALIDATION_SEED,
                        help='synthetic seed (default %(default)s, the training validation '
                        'seed; the held-out test seed is refused)')
    parser.add_argument('--rounds', type=int, default=2,
                        help='passes over the settings (default %(default)s)')
    parser.add_argument('--top-k', type=int, metavar='K',
                        help="instance slots of the written graph (not searched: it sets the "
                        "grouping's cost, cells x K); default: the package's own")
    parser.add_argument('--size', metavar='WxH',
                        help="network input size of the tuned and written package (same "
                        "weights; frames are resized to it); default: the package's own. "
                        "A network trained with scale augmentation may see small objects "
                        "better at a larger size, at a cost in time")
    parser.add_argument('--flip-test', action=argparse.BooleanOptionalAction, default=None,
                        help="tune (and write) the package with test-time flip of the semantic "
                        "logits on or off; default: the package's own")
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                        help='torch device for the network (default %(default)s)')
    parser.add_argument('--out', metavar='DIR',
                        help='write the package with the tuned settings here (re-exported '
                        'ONNX + manifest + weights); without it only the search is printed')
    parser.add_argument('--json', metavar='FILE', help='write the search (every trial) here')
    parser.epilog = 'searched: ' + '; '.join(
        f'{name} {", ".join(str(v) for v in values)}' for name, values in SEARCH_SPACE.items())


def _frames(args, manifest):
    """The frames to tune on: (iterable, count, description)."""
    from ..data.synthetic import SYNTHETIC_TEST_SEED
    if args.data == 'synthetic':
        from ..data.synthetic.generator import SceneGenerator
        if args.seed == SYNTHETIC_TEST_SEED:
            raise ValueError(f'--seed {args.seed} is the held-out test seed of the model cards; '
                             'tune on another seed so the test stays unseen')
        if args.frames <= 0:
            raise ValueError('--frames must be positive with --data synthetic')
        generator = SceneGenerator(manifest.input_width, manifest.input_height, args.seed)
        return ((generator.generate(index) for index in range(args.frames)), args.frames,
                f'synthetic seed {args.seed}')
    from ..training.frames import FrameSource
    source = FrameSource(args.data, args.split, manifest.input_width, manifest.input_height,
                         args.seed, args.frames, manifest.label_set)
    if len(source) == 0:
        raise ValueError(f'{args.data} split {args.split!r} has no frames')
    return ((source[index] for index in range(len(source))), len(source),
            f'{args.data} ({args.split})')


def with_top_k(manifest, top_k: int):
    """``manifest`` with ``postprocess.top_k`` replaced; ``ValueError`` naming ``--top-k``."""
    from ..postprocess.grid import validate_settings
    settings = dataclasses.replace(manifest.postprocess, top_k=top_k)
    labels = manifest.label_set
    try:
        validate_settings(settings, labels.num_classes, labels.thing_ids,
                          manifest.label_divisor, labels.void_id)
    except ValueError as error:
        raise ValueError(f'--top-k: {error}') from None
    return dataclasses.replace(manifest, postprocess=settings)


def with_size(manifest, text: str):
    """``manifest`` at network size ``text`` (``WxH``); ``ValueError`` naming ``--size``."""
    from ..models import get_model_spec
    from . import parse_width_height
    width, height = parse_width_height(text, '--size', '1280x640')
    divisor = get_model_spec(manifest.architecture).size_divisor
    stride = manifest.postprocess.grouping_stride
    multiple = divisor * stride // math.gcd(divisor, stride)
    if width <= 0 or height <= 0 or width % multiple or height % multiple:
        raise ValueError(f'--size {text}: width and height must be positive multiples of '
                         f'{multiple} ({manifest.architecture} needs multiples of {divisor}, '
                         f'the grouping grid of {stride})')
    return dataclasses.replace(manifest, input_width=width, input_height=height,
                               onnx_sha256=None)


def _describe(settings) -> str:
    return ', '.join(f'{k} {v}' for k, v in dataclasses.asdict(settings).items())


def _score_text(score) -> str:
    return (f'PQ {score.pq:.4f} (things {score.pq_things:.4f}, stuff {score.pq_stuff:.4f})  '
            f'mIoU {score.miou:.4f}')


def main(args) -> int:
    from ..data.cityscapes import DatasetError
    from ..export.graph import ExportError
    from ..export.onnx_export import export_model_package
    from ..manifest import ManifestError
    from ..packages.atomic import atomic_write_text
    from ..packages.loading import load_model_package, load_torch_network, PackageError
    from ..packages.zoo import resolve_model
    from ..tools.progress import ProgressBar
    from ..training.device import resolve_device
    from ..training.tuning import collect_head_samples, require_panoptic, tune_postprocess

    try:
        manifest, package_dir = load_model_package(resolve_model(args.model))
        require_panoptic(manifest)
        if args.top_k is not None:
            manifest = with_top_k(manifest, args.top_k)
        if args.size is not None:
            manifest = with_size(manifest, args.size)
        if args.flip_test is not None:
            manifest = dataclasses.replace(manifest, flip_test=args.flip_test)
        frames, count, source = _frames(args, manifest)
        device = resolve_device(args.device)
        network = load_torch_network(package_dir, manifest, device)
        bar = ProgressBar(count, 'network')
        samples = collect_head_samples(network, manifest, frames, device, progress=bar.update)
        bar.finish()
        print(f'{manifest.name}: {len(samples)} frames of {source} at '
              f'{manifest.input_width}x{manifest.input_height}'
              + (' (test-time flip)' if manifest.flip_test else ''))
        print(f'  start: {_describe(manifest.postprocess)}')

        def report(trial):
            print(f'  {_score_text(trial.score)}  <- {_describe(trial.settings)}', flush=True)

        result = tune_postprocess(samples, manifest, rounds=args.rounds, on_trial=report)
    except (ValueError, KeyError, RuntimeError, OSError, DatasetError, ManifestError,
            PackageError) as error:
        print(f'tune: {error}', file=sys.stderr)
        return 2
    print(f'baseline: {_score_text(result.baseline.score)}')
    print(f'tuned:    {_score_text(result.best.score)}')
    changed = result.changed()
    print('changed:  ' + (', '.join(f'{k} {a} -> {b}' for k, (a, b) in changed.items())
                          or 'nothing (the starting settings are the best found)'))
    summary = {
        'data': source, 'frames': result.frames, 'rounds': args.rounds,
        'size': f'{manifest.input_width}x{manifest.input_height}',
        'flip_test': manifest.flip_test,
        'baseline': {'settings': dataclasses.asdict(result.baseline.settings),
                     'score': result.baseline.score.as_dict()},
        'tuned': {'settings': dataclasses.asdict(result.best.settings),
                  'score': result.best.score.as_dict()},
    }
    if args.json:
        trials = [{'settings': dataclasses.asdict(t.settings), 'score': t.score.as_dict()}
                  for t in result.trials]
        atomic_write_text(args.json, json.dumps(dict(summary, trials=trials), indent=2) + '\n')
    if args.out:
        info = dict(manifest.info)
        info['postprocess_tuning'] = summary
        tuned = dataclasses.replace(manifest, postprocess=result.best.settings, info=info)
        try:
            export_model_package(network.cpu(), tuned, args.out,
                                 fp16_weights=manifest.info.get('weights_dtype') == 'float16',
                                 save_weights=manifest.weights_file is not None)
        except (ExportError, OSError) as error:
            print(f'tune: cannot write {args.out}: {error}', file=sys.stderr)
            return 2
        print(f'wrote the tuned package to {args.out}')
    return 0
