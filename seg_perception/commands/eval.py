"""``seg-perception eval``: score a model on a recorded bag (or a Cityscapes-format folder)."""

from __future__ import annotations

import sys

HELP = 'evaluate a model on a rosbag or dataset folder: metrics.json, report, output MCAP bag'


def add_arguments(parser) -> None:
    from ..bags.bag_io import DISTRO_CHOICES
    from ..bags.metadata import DISTRO_HELP
    from ..evaluation.config import REPORT_CHOICES
    from ..evaluation.output_bag import OUTPUT_CHOICES
    from ..runtime.base import BACKEND_CHOICES, DEVICE_CHOICES, PRECISION_CHOICES
    parser.add_argument('bag', nargs='*', default=[],
                        help='input bag(s) (rosbag2 directory, .mcap or .db3 file); several: a '
                        'fleet evaluation with one merged report')
    parser.add_argument('--bags', metavar='DIR_OR_GLOB', default=None,
                        help='fleet evaluation of every bag in DIR (or matching the glob)')
    parser.add_argument('--jobs', type=int, default=1, metavar='N',
                        help='fleet: evaluate bags in N local processes (default 1)')
    parser.add_argument('--ray', nargs='?', const='', default=None, metavar='ADDRESS',
                        help='fleet: run bags as Ray tasks on the cluster at ADDRESS (a local '
                        'Ray without it); needs pip install "seg-perception[ray]"')
    parser.add_argument('--bag-outputs', action='store_true',
                        help="fleet: also write each bag's output bag (default: metrics and "
                        'report per bag)')
    parser.add_argument('--image-topic', action='append', default=[], metavar='T',
                        help='camera image topic (Image or CompressedImage); repeat for several '
                        'cameras')
    parser.add_argument('--label-topic', action='append', default=[], metavar='L',
                        help='ground-truth topic for the image topic at the same position: '
                        'mono8/mono16 train ids or 32SC1 panoptic ids, matched by header stamp '
                        '(default <camera>/labels/panoptic, then <camera>/labels/semantic)')
    parser.add_argument('--labels-dir', metavar='DIR', default=None,
                        help='Cityscapes-format folder with the labels instead: city folder '
                        "<camera> holds camera <camera>'s frames in recording order")
    parser.add_argument('--dataset', metavar='DIR', default=None,
                        help='folder mode: evaluate a Cityscapes-format folder (no bag)')
    parser.add_argument('--split', default='val', help='split of --labels-dir / --dataset '
                        '(default val)')
    parser.add_argument('--no-labels', action='store_true',
                        help='no ground truth: latency and output bag only')
    parser.add_argument('--model', required=True, metavar='M',
                        help='zoo model name or model-package directory')
    parser.add_argument('--backend', choices=BACKEND_CHOICES, default='auto')
    parser.add_argument('--device', choices=DEVICE_CHOICES, default='auto')
    parser.add_argument('--precision', choices=PRECISION_CHOICES, default='auto')
    parser.add_argument('--threads', type=int, default=0,
                        help='backend CPU threads (0 = backend default)')
    parser.add_argument('--workers', type=int, default=1, metavar='N',
                        help='threads decoding images and labels (default 1)')
    parser.add_argument('--out', required=True, metavar='DIR', help='output folder')
    parser.add_argument('--outputs', default=','.join(OUTPUT_CHOICES),
                        help='segmentation topics recorded in the output bag, comma separated, '
                        f'or "none" (default all: {",".join(OUTPUT_CHOICES)})')
    parser.add_argument('--report', choices=REPORT_CHOICES, default='md',
                        help='report format (default md)')
    parser.add_argument('--max-frames', type=int, default=None, metavar='N',
                        help='stop after N images')
    parser.add_argument('--distro', choices=DISTRO_CHOICES, default=None,
                        help='ROS 2 distribution: message typestore used to read the bag, and '
                        f'the metadata.yaml version of the output bag ({DISTRO_HELP})')
    parser.add_argument('--min-instance-area', type=int, default=0,
                        help='as the node parameter: drop smaller instances (network pixels)')
    parser.add_argument('--worst-frames', type=int, default=3,
                        help='lowest-mIoU frames shown in the report (default 3)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def main(args) -> int:
    from ..bags.bag_io import BagError
    from ..evaluation.config import EvalConfig, EvalError
    from ..evaluation.evaluate import run_evaluation
    outputs = () if args.outputs.strip() == 'none' else tuple(
        o.strip() for o in args.outputs.split(',') if o.strip())
    fleet = len(args.bag) > 1 or args.bags or args.jobs != 1 or args.ray is not None
    config = EvalConfig(
        out_dir=args.out, model=args.model,
        bag=args.bag[0] if args.bag and not fleet else None, image_topics=args.image_topic,
        label_topics=args.label_topic, labels_dir=args.labels_dir, dataset_dir=args.dataset,
        split=args.split, no_labels=args.no_labels, backend=args.backend, device=args.device,
        precision=args.precision, threads=args.threads, workers=args.workers, outputs=outputs,
        report_format=args.report, max_frames=args.max_frames, distro=args.distro,
        min_instance_area=args.min_instance_area, worst_frames=args.worst_frames,
        progress=not args.no_progress)
    if fleet:
        return _fleet_main(args, config)
    try:
        summary = run_evaluation(config)
    except (EvalError, BagError, ValueError, OSError) as error:
        print(f'seg-perception eval: error: {error}', file=sys.stderr)
        return 2
    metrics = summary.metrics
    frames = metrics['frames']
    print(f'frames: read {frames["read"]}, evaluated {frames["evaluated"]}, skipped '
          f'{frames["skipped"]}' + (f' ({frames["skip_reasons"]})' if frames['skipped'] else ''))
    if metrics.get('semantic'):
        print(f'mIoU {_pct(metrics["semantic"]["mean_iou"])}')
    if metrics.get('panoptic'):
        panoptic = metrics['panoptic']
        print(f'PQ {_pct(panoptic["pq"])} (things {_pct(panoptic["pq_things"])}, stuff '
              f'{_pct(panoptic["pq_stuff"])}), SQ {_pct(panoptic["sq"])}, RQ '
              f'{_pct(panoptic["rq"])}')
    latency = metrics['latency_ms']
    if latency['count']:
        print(f'latency ms: p50 {latency["p50"]:.1f}, p95 {latency["p95"]:.1f}, max '
              f'{latency["max"]:.1f}; throughput {metrics["throughput_fps"]:.2f} frames/s')
    print(f'wrote {summary.metrics_path}' + (f', {summary.report_path}' if summary.report_path
                                             else '')
          + (f', {summary.output_bag}' if summary.output_bag else ''))
    if summary.read_error:
        print(f'seg-perception eval: warning: {summary.read_error}', file=sys.stderr)
    bad_labels = _bad_label_warning(frames, summary.metrics.get('model', {}).get('name'))
    if bad_labels:
        print(f'seg-perception eval: warning: {bad_labels}', file=sys.stderr)
    if summary.output_error:
        print(f'seg-perception eval: error: output bag: {summary.output_error}',
              file=sys.stderr)
    if summary.interrupted:
        print('seg-perception eval: interrupted; results cover the frames evaluated so far',
              file=sys.stderr)
    elif summary.nothing_evaluated:
        from ..evaluation.summary import nothing_evaluated_line
        print(f'seg-perception eval: error: {nothing_evaluated_line(metrics)}',
              file=sys.stderr)
    return summary.exit_code


def _fleet_main(args, template) -> int:
    """Several bags: ``evaluation.fleet``; 0 when every bag was evaluated, 3 when some
    failed (reported), 2 when the fleet could not start or no bag was evaluated."""
    from ..evaluation.config import EvalError
    from ..evaluation.fleet import expand_bags, FleetConfig, run_fleet
    if args.dataset:
        print('seg-perception eval: error: --dataset takes no bags, --bags, --jobs or --ray',
              file=sys.stderr)
        return 2
    try:
        bags = expand_bags(args.bag, args.bags)
        metrics = run_fleet(FleetConfig(bags=bags, template=template, out_dir=args.out,
                                        jobs=args.jobs, ray_address=args.ray,
                                        bag_outputs=args.bag_outputs),
                            log=lambda line: print(line, file=sys.stderr))
    except EvalError as error:
        print(f'seg-perception eval: error: {error}', file=sys.stderr)
        return 2
    count, frames = metrics['bags'], metrics['frames']
    print(f'bags: {count["total"]}, evaluated {count["evaluated"]}, failed {count["failed"]}; '
          f'frames: read {frames["read"]}, evaluated {frames["evaluated"]}, skipped '
          f'{frames["skipped"]}')
    if metrics.get('semantic'):
        print(f'mIoU {_pct(metrics["semantic"]["mean_iou"])}')
    if metrics.get('panoptic'):
        print(f'PQ {_pct(metrics["panoptic"]["pq"])}')
    for failed in metrics['failed_bags']:
        print(f'seg-perception eval: warning: bag {failed["bag"]} failed: {failed["error"]}',
              file=sys.stderr)
    print(f'wrote {args.out}/fleet_metrics.json')
    if not count['evaluated']:
        return 2
    return 3 if count['failed'] else 0


def _pct(value) -> str:
    return 'n/a' if value is None else f'{value * 100:.1f}'


def _bad_label_warning(frames, model_name) -> str:
    """One line for frames skipped because their ground truth has ids outside the model's
    label set (a bag labelled in another label set); empty when there were none."""
    count = frames.get('skip_reasons', {}).get('bad label', 0)
    if not count:
        return ''
    first = next((skip.get('detail', '') for skip in frames.get('skipped_frames', [])
                  if skip.get('reason') == 'bad label'), '')
    return (f'{count} of {frames["read"]} frames skipped for bad labels, e.g. {first}; the '
            f'ground truth must use the label set of model {model_name} (or run with '
            '--no-labels)')
