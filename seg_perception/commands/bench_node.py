"""``seg-perception bench-node``: the node's latency and memory vs the Segmenter, its
throughput and latency with 1 and 4 cameras for each ``batch_cameras`` setting, and
delivered/published per output topic for 1, 2 and 4 cameras on both transports.

The Segmenter is loaded with the graph outputs the node loads (its default ``publish_``
switches: no ``confidence``), so both run the same pruned graph; the report names them."""

from __future__ import annotations

import os
import sys
from typing import List, Optional

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
                        help='length of each load run (default: %(default)s)')
    parser.add_argument('--cameras', default='1,4', metavar='LIST',
                        help='camera counts of the load runs (throughput and latency with every '
                             'camera publishing faster than the node segments) (default: '
                             '%(default)s)')
    parser.add_argument('--batch-cameras', default='auto,true,false', metavar='LIST',
                        help="the node's batch_cameras in the load runs of several cameras; "
                             'one camera runs once, with the first (default: %(default)s)')
    parser.add_argument('--camera-rate', type=float, default=None, metavar='HZ',
                        help='rate of every camera in the load runs (default: twice the '
                             "Segmenter's frame rate)")
    parser.add_argument('--threads', type=int, default=0,
                        help='ONNX Runtime threads for Segmenter and node (0 = default)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS domain id (default: $ROS_DOMAIN_ID or 0)')
    parser.add_argument('--cache-dir', metavar='DIR', default=None,
                        help='where the fallback package is kept (default: the demo cache)')
    parser.add_argument('--measure', default='speed,delivery', metavar='LIST',
                        help='comma-separated: speed (latency, throughput, memory), delivery '
                             '(delivered/published per topic) (default: %(default)s)')
    parser.add_argument('--delivery-frames', type=int, default=15,
                        help='frames per camera sent one at a time (default: %(default)s)')
    parser.add_argument('--delivery-rate', type=float, default=30.0,
                        help='camera rate of the second delivery workload (default: '
                             '%(default)s Hz)')
    parser.add_argument('--delivery-seconds', type=float, default=10.0,
                        help='length of the second delivery workload (default: %(default)s)')
    parser.add_argument('--delivery-cameras', default='1,2,4', metavar='LIST',
                        help='camera counts for delivery (default: %(default)s)')
    parser.add_argument('--transports', default='default,large_data', metavar='LIST',
                        help='delivery transports: default (nothing set; the node configures '
                             'itself), large_data (every process with '
                             'config/fastdds_large_data.xml), udp (the subscriber on UDP only, '
                             'as on another machine) (default: %(default)s)')
    parser.add_argument('--json', metavar='FILE', help='also write the numbers as JSON')


def main(args) -> int:
    import json

    from ..data.synthetic.generator import SceneGenerator
    from ..packages.zoo import list_zoo, resolve_zoo_model
    from ..pipeline.config import PARAMETERS_BY_NAME
    from ..ros.delivery_benchmark import (
        DELIVERY_OUTPUTS,
        format_delivery_table,
        rows_to_dicts,
        run_delivery_benchmark,
        TRANSPORTS,
    )
    from ..ros.node_benchmark import format_node_report, run_node_benchmark
    from ..tools.demo_setup import cached_demo_package, default_cache_dir

    if args.frames < 3:
        print(f'error: --frames must be at least 3, got {args.frames}', file=sys.stderr)
        return 2
    if args.width < 64 or args.height < 64:
        print('error: --width and --height must be at least 64', file=sys.stderr)
        return 2
    measures = _choices('--measure', args.measure, ('speed', 'delivery'))
    transports = _choices('--transports', args.transports, TRANSPORTS)
    settings = _choices('--batch-cameras', args.batch_cameras,
                        PARAMETERS_BY_NAME['batch_cameras'].choices)
    counts = _counts('--delivery-cameras', args.delivery_cameras)
    load_counts = _counts('--cameras', args.cameras)
    if None in (measures, transports, settings, counts, load_counts):
        return 2
    if args.camera_rate is not None and args.camera_rate <= 0:
        print('error: --camera-rate must be positive', file=sys.stderr)
        return 2
    if args.delivery_frames < 1 or args.delivery_rate <= 0 or args.delivery_seconds <= 0:
        print('error: --delivery-frames, --delivery-rate and --delivery-seconds must be '
              'positive', file=sys.stderr)
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
    results = {}
    if 'speed' in measures:
        generator = SceneGenerator(width=args.width, height=args.height, seed=3)
        images = [generator.generate(index).image for index in range(args.frames)]
        print(f'benchmarking {model} on {args.backend} with {args.width}x{args.height} '
              'frames...', flush=True)
        report = run_node_benchmark(model, package, images, backend=args.backend,
                                    threads=args.threads, domain_id=domain_id,
                                    flood_seconds=args.flood_seconds, camera_counts=load_counts,
                                    batch_settings=settings, camera_rate_hz=args.camera_rate)
        print(format_node_report(report))
        results.update(report.to_dict())
    if 'delivery' in measures:
        print(f'delivery of {", ".join(DELIVERY_OUTPUTS)} to a reliable depth-10 subscriber, '
              f'{args.width}x{args.height} frames...', flush=True)
        rows = run_delivery_benchmark(
            package, backend=args.backend, threads=args.threads, width=args.width,
            height=args.height, domain_id=domain_id, frames=args.delivery_frames,
            rate_hz=args.delivery_rate, flood_seconds=args.delivery_seconds,
            transports=transports, camera_counts=counts)
        print('delivered/published per output topic (all cameras together):')
        print(format_delivery_table(rows))
        results['delivery'] = rows_to_dicts(rows)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(results, stream, indent=2)
        print(f'wrote {args.json}')
    return 0


def _choices(flag: str, text: str, valid) -> Optional[List[str]]:
    """The comma-separated ``text`` of ``flag`` as a list; prints an error and returns None
    when a name is not in ``valid``."""
    names = [name.strip() for name in text.split(',') if name.strip()]
    wrong = [name for name in names if name not in valid]
    if not names or wrong:
        print(f'error: {flag} takes a comma-separated list of {", ".join(valid)}, got '
              f'{text!r}', file=sys.stderr)
        return None
    return names


def _counts(flag: str, text: str) -> Optional[List[int]]:
    """The comma-separated camera counts (1..8) of ``flag``; prints an error and returns None
    when ``text`` is not such a list."""
    try:
        counts = [int(part) for part in text.split(',')]
    except ValueError:
        counts = []
    if not counts or not all(1 <= count <= 8 for count in counts):
        print(f'error: {flag} must be a comma-separated list of 1..8, got {text!r}',
              file=sys.stderr)
        return None
    return counts
