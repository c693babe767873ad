"""``seg-perception demo``: the node on two synthetic cameras over real ROS 2 topics.

Starts ``seg_perception_node`` (a subprocess) with the ENet panoptic model (the zoo's
``enet_panoptic`` when shipped, else a randomly initialised export cached under the user's
cache directory), publishes two generated street cameras at 10 Hz, records every output
with its header to an MCAP bag, and prints per camera frames in / out, dropped, latency
p50 / p95 and mIoU / PQ against the generated ground truth. Writes a PNG contact sheet
(input | semantic | instance | panoptic).
"""

from __future__ import annotations

import os
import sys

HELP = 'run the node on two synthetic cameras: latency, drops, mIoU/PQ, MCAP bag, PNG sheet'

CAMERAS = ('front', 'rear')
POOL_FRAMES = 8


def add_arguments(parser) -> None:
    from ..runtime.base import BACKEND_CHOICES
    from ..tools.demo_setup import default_cache_dir, DEMO_MODEL
    parser.add_argument('--model', default=None, metavar='NAME_OR_DIR',
                        help=f'zoo model or package (default: {DEMO_MODEL} from the zoo, else '
                             'a random-weight ENet export)')
    parser.add_argument('--backend', default='onnxruntime', choices=BACKEND_CHOICES,
                        help='inference backend (default: %(default)s, CPU)')
    parser.add_argument('--duration', type=float, default=10.0,
                        help='seconds of streaming (default: %(default)s)')
    parser.add_argument('--rate', type=float, default=10.0,
                        help='frames per second per camera (default: %(default)s)')
    parser.add_argument('--width', type=int, default=1024, help='camera image width')
    parser.add_argument('--height', type=int, default=512, help='camera image height')
    parser.add_argument('--out', metavar='DIR', default='demo_output',
                        help='bag, contact sheet and node log go here (default: %(default)s)')
    parser.add_argument('--cache-dir', metavar='DIR', default=default_cache_dir(),
                        help='where the fallback package is kept (default: %(default)s)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS domain id (default: $ROS_DOMAIN_ID or 0)')
    parser.add_argument('--threads', type=int, default=0,
                        help='ONNX Runtime threads for the node (0 = default)')
    parser.add_argument('--default-transport', action='store_true',
                        help='do not load config/fastdds_large_data.xml (by default the demo '
                             'and its node use it unless a Fast DDS profile is set already)')


def _check_arguments(args) -> None:
    if not 0 < args.duration <= 600:
        raise ValueError(f'--duration must be in (0, 600] seconds, got {args.duration}')
    if not 0 < args.rate <= 60:
        raise ValueError(f'--rate must be in (0, 60] Hz, got {args.rate}')
    if args.width < 64 or args.height < 64:
        raise ValueError(f'--width and --height must be at least 64, got {args.width}x'
                         f'{args.height}')
    if args.domain_id is not None and not 0 <= args.domain_id <= 232:
        raise ValueError(f'--domain-id must be in 0..232, got {args.domain_id}')


def _prepare_bag_path(out_dir: str) -> str:
    import shutil
    path = os.path.join(out_dir, 'demo_bag')
    if os.path.exists(path):
        if not os.path.isfile(os.path.join(path, 'metadata.yaml')):
            raise ValueError(f'{path} exists and is not a bag from an earlier demo; remove it')
        shutil.rmtree(path)
    return path


def main(args) -> int:
    import time

    from ..tools.demo_setup import resolve_demo_model, use_large_data_profile

    start = time.monotonic()
    try:
        _check_arguments(args)
        model, trained = resolve_demo_model(args.model, args.cache_dir, args.height,
                                            args.width)
    except (ValueError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    from ..data.synthetic.generator import SceneGenerator
    from ..labels import cityscapes
    from ..ros.demo_session import DemoFrame, DemoSession
    from ..tools.demo_scoring import contact_sheet, format_table
    from ..tools.node_process import node_command, start_node, stop_node

    domain_id = args.domain_id if args.domain_id is not None \
        else int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)
    os.makedirs(args.out, exist_ok=True)
    try:
        bag_path = _prepare_bag_path(args.out)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    log_path = os.path.join(args.out, 'node.log')
    command = node_command(model, args.backend, CAMERAS, args.threads)
    if not args.default_transport:
        try:
            print(use_large_data_profile())
        except FileNotFoundError as error:
            print(f'warning: {error}; using the default transport', file=sys.stderr)
    print(f'model: {model}' + ('' if trained else ' (random weights: the maps show the '
                                                   'pipeline, not a trained model)'))
    print(f'starting seg_perception_node on ROS domain {domain_id} (log: {log_path})',
          flush=True)
    log = open(log_path, 'w', encoding='utf-8')
    node = start_node(command, domain_id, log, {'PYTHONUNBUFFERED': '1'})

    print(f'generating {POOL_FRAMES} frames per camera ({args.width}x{args.height})...',
          flush=True)
    frames = {}
    for seed, camera in enumerate(CAMERAS, start=1):
        generator = SceneGenerator(width=args.width, height=args.height, seed=seed)
        frames[camera] = [DemoFrame(f.image, f.semantic, f.panoptic)
                          for f in (generator.generate(i) for i in range(POOL_FRAMES))]
    labels = cityscapes()
    session = DemoSession(domain_id, frames, bag_path, labels)
    status = 0
    try:
        if not session.wait_for_node(120.0, lambda: node.poll() is None):
            log.flush()
            with open(log_path, 'r', encoding='utf-8') as stream:
                tail = stream.read()[-2000:]
            print(f'error: the node did not start (exit status {node.poll()}):\n{tail}',
                  file=sys.stderr)
            return 1
        print(f'node ready after {time.monotonic() - start:.1f} s; streaming {len(CAMERAS)} '
              f'cameras at {args.rate:g} Hz for {args.duration:g} s', flush=True)
        session.start_publishing(args.rate)
        time.sleep(args.duration)
        session.stop_publishing()
        # Wait for the node's diagnostics to account for every frame it accepted (a frame
        # still in inference can take seconds on a starved CPU: a loaded CI machine once
        # needed more than 10 s).
        session.wait_for_diagnostics(
            lambda d: all(c in d and int(d[c]['frames_in']) == int(d[c]['frames_out'])
                          + int(d[c]['dropped']) for c in CAMERAS), 30.0)
    finally:
        session.close()
        if not stop_node(node):
            status = 1
        log.close()

    rows = []
    for camera in CAMERAS:
        score = session.scores[camera]
        diag = session.diagnostics_for(camera) or {}
        p50, p95 = score.latency_ms()
        rows.append([camera, str(session.published[camera]), diag.get('frames_in', '?'),
                     diag.get('frames_out', '?'), diag.get('dropped', '?'),
                     diag.get('rejected', '?'), str(score.frames_scored), _fmt(p50), _fmt(p95),
                     _fmt(diag.get('latency_p50_ms')), _fmt(100 * score.mean_iou()),
                     _fmt(100 * score.pq())])
    print()
    print(format_table(rows, ['camera', 'published', 'frames in', 'out', 'dropped',
                              'rejected', 'scored', 'e2e p50 ms', 'e2e p95 ms', 'node p50 ms',
                              'mIoU %', 'PQ %']))
    model_diag = session.diagnostics_for('model') or {}
    if model_diag:
        print(f'\nbackend: {model_diag.get("backend")} {model_diag.get("device")} '
              f'{model_diag.get("precision")}, network {model_diag.get("network_size")}')
    print('e2e = camera publish -> panoptic output received; node = receipt -> publish '
          'inside the node. Frames replaced by a newer one before inference are dropped by '
          'design (newest frame only).')
    counts = session.bag_counts()
    size_mb = sum(entry.stat().st_size for entry in os.scandir(bag_path)) / 2 ** 20 \
        if os.path.isdir(bag_path) else 0.0
    print(f'bag: {bag_path} ({sum(counts.values())} messages on {len(counts)} topics, '
          f'{size_mb:.0f} MB)')
    sheet_rows = [row for camera in CAMERAS for row in session.sheet[camera]]
    if sheet_rows:
        import cv2
        sheet = contact_sheet(sheet_rows, labels, 1000)
        sheet_path = os.path.join(args.out, 'contact_sheet.png')
        if not cv2.imwrite(sheet_path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            print(f'error: could not write {sheet_path}', file=sys.stderr)
            return 1
        print(f'contact sheet (input | semantic | instance | panoptic): {sheet_path}')
    else:
        print('error: no output was received from the node', file=sys.stderr)
        status = 1
    print(f'done in {time.monotonic() - start:.1f} s')
    return status or (0 if node.returncode == 0 else 1)


def _fmt(value) -> str:
    if value is None:
        return 'n/a'
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return 'n/a' if number != number else f'{number:.1f}'
