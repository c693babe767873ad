"""``seg-perception bench-node``: the node's latency, throughput and memory vs the Segmenter."""

from __future__ import annotations

import os
import sys

HELP = 'benchmark seg_perception_node over real topics against the bare Segmenter'


def add_arguments(parser) -> None:
    from ..runtime.base import BACKEND_CHOICES
    parser.add_argument('--model', default=None, metavar='NAME_OR_DIR',
                        help='zoo model or package (default: enet_panoptic from the zoo, else '
                             'a random-weight ENet panoptic 1024x512 export; speed does not '
                             'depend on weights)')
    parser.add_argument('--backend', default='onnxruntime', choices=BACKEND_CHOICES)
    parser.add_argument('--width', type=int, default=1024, help='camera image width')
    parser.add_argument('--height', type=int, default=512, help='camera image height')
    parser.add_argument('--frames', type=int, default=10, help='timed frames per measurement')
    parser.add_argument('--flood-seconds', type=float, default=8.0,
                        help='length of each throughput run (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=0,
                        help='ONNX Runtime threads for Segmenter and node (0 = default)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS domain id (default: $ROS_DOMAIN_ID or 0)')
    parser.add_argument('--cache-dir', metavar='DIR', default=None,
                        help='where the fallback package is kept (default: the demo cache)')
    parser.add_argument('--json', metavar='FILE', help='also write the numbers as JSON')


def main(args) -> int:
    import json

    from ..data.synthetic.generator import SceneGenerator
    from ..packages.zoo import list_zoo, resolve_zoo_model
    from ..ros.node_benchmark import format_node_report, run_node_benchmark
    from ..tools.demo_setup import cached_demo_package, default_cache_dir

    if args.frames < 3:
        print(f'error: --frames must be at least 3, got {args.frames}', file=sys.stderr)
        return 2
    if args.width < 64 or args.height < 64:
        print('error: --width and --height must be at least 64', file=sys.stderr)
        return 2
    if args.model:
        model = package = args.model
        if '/' not in model and not os.path.isdir(model):
            package = resolve_zoo_model(model)
    elif 'enet_panoptic' in list_zoo():
        model, package = 'enet_panoptic', resolve_zoo_model('enet_panoptic')
    else:
        package = cached_demo_package(args.cache_dir or default_cache_dir(), 512, 1024)
        model = 'enet panoptic 1024x512 (random weights)'
    domain_id = args.domain_id if args.domain_id is not None \
        else int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)
    generator = SceneGenerator(width=args.width, height=args.height, seed=3)
    images = [generator.generate(index).image for index in range(args.frames)]
    print(f'benchmarking {model} on {args.backend} with {args.width}x{args.height} frames...',
          flush=True)
    report = run_node_benchmark(model, package, images, backend=args.backend,
                                threads=args.threads, domain_id=domain_id,
                                flood_seconds=args.flood_seconds)
    print(format_node_report(report))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(report.to_dict(), stream, indent=2)
        print(f'wrote {args.json}')
    return 0
