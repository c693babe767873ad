"""``seg-perception bench``: latency of the Segmenter path for a model on a backend.

It runs what the node runs with default parameters: the graph without the outputs no
default output reads (``pipeline.graph_outputs.DEFAULT_GRAPH_OUTPUTS``: no ``confidence``);
``--all-outputs`` runs the whole graph.
"""

from __future__ import annotations

import sys

HELP = 'benchmark a model (architecture name or package) through the Segmenter'


def add_arguments(parser) -> None:
    from ..runtime.base import BACKEND_CHOICES, DEVICE_CHOICES, PRECISION_CHOICES
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--model', metavar='NAME',
                        help='registered architecture; exported with random weights to a '
                             'temporary package first (speed does not depend on weights)')
    source.add_argument('--package', metavar='DIR', help='an exported model package')
    parser.add_argument('--backend', default='auto', choices=BACKEND_CHOICES)
    parser.add_argument('--device', default='auto', choices=DEVICE_CHOICES)
    parser.add_argument('--precision', default='auto', choices=PRECISION_CHOICES)
    parser.add_argument('--height', type=int, help='network input height (with --model)')
    parser.add_argument('--width', type=int, help='network input width (with --model)')
    parser.add_argument('--tasks', default='semantic', choices=('semantic', 'panoptic'),
                        help='graph to export with --model')
    parser.add_argument('--image-height', type=int,
                        help='camera image height fed to the Segmenter (default: network)')
    parser.add_argument('--image-width', type=int,
                        help='camera image width fed to the Segmenter (default: network)')
    parser.add_argument('--iterations', type=int, default=50, help='timed frames')
    parser.add_argument('--warmup', type=int, default=5, help='untimed frames first')
    parser.add_argument('--threads', type=int, help='onnxruntime intra-op threads')
    parser.add_argument('--json', metavar='FILE', help='also write the numbers as JSON')
    parser.add_argument('--all-outputs', action='store_true',
                        help='compute every graph output (confidence too) instead of what '
                             'the node computes with default parameters')
    parser.add_argument('--efficiency', action='store_true',
                        help="also report the package's GFLOPs, the achieved GFLOP/s, this "
                             "machine's measured FP32 matmul and 3x3 conv rates and the "
                             "post-processing share of ONNX Runtime's profile "
                             '(tools/efficiency.py)')


def main(args) -> int:
    import tempfile

    from ..segmenter import Segmenter
    from ..tools.benchmark import (
        export_random_package,
        format_report,
        run_benchmark,
        write_report_json,
    )

    if (args.image_height is None) != (args.image_width is None):
        print('error: give both --image-height and --image-width, or neither',
              file=sys.stderr)
        return 2
    image_size = (args.image_height, args.image_width) if args.image_height else None
    options = {} if args.threads is None else {'threads': args.threads}
    if not args.all_outputs:
        from ..pipeline.graph_outputs import DEFAULT_GRAPH_OUTPUTS
        options['outputs'] = DEFAULT_GRAPH_OUTPUTS
    with tempfile.TemporaryDirectory(prefix='seg_perception_bench_') as scratch:
        if args.model:
            if args.height is None or args.width is None:
                print('error: --model needs --height and --width', file=sys.stderr)
                return 2
            print(f'exporting randomly initialised {args.model} ({args.tasks}) '
                  f'{args.width}x{args.height}...', flush=True)
            package = export_random_package(args.model, args.tasks, args.height, args.width,
                                            scratch)
        else:
            if args.height is not None or args.width is not None:
                print('error: --height/--width apply to --model; a package has its own size',
                      file=sys.stderr)
                return 2
            package = args.package
        with Segmenter.from_package(package, backend=args.backend, device=args.device,
                                    precision=args.precision, **options) as segmenter:
            report = run_benchmark(segmenter, image_size=image_size,
                                   iterations=args.iterations, warmup=args.warmup)
        efficiency = _efficiency(package, args, report) if args.efficiency else None
    print(format_report(report))
    if efficiency:
        print(efficiency)
    if args.json:
        write_report_json(report, args.json)
        print(f'wrote {args.json}')
    return 0


def _efficiency(package: str, args, report) -> str:
    """``bench --efficiency`` lines (ONNX Runtime CPU, the bench's thread count), for the
    graph the bench ran (pruned to its outputs unless ``--all-outputs``)."""
    import contextlib

    from ..packages.loading import load_model_package
    from ..packages.output_pruning import onnx_available, pruned_onnx_file
    from ..runtime.onnxruntime_backend import default_thread_count
    from ..tools.efficiency import (
        format_efficiency,
        machine_rates,
        package_gflops,
        profile_graph,
    )
    manifest, directory = load_model_package(package)
    threads = args.threads or default_thread_count()
    path = manifest.onnx_path(directory)
    outputs = tuple(name for name in manifest.output_names if name in report.outputs)
    with contextlib.ExitStack() as stack:
        if outputs != manifest.output_names and onnx_available():
            path, _ = stack.enter_context(pruned_onnx_file(path, outputs))
        profile = profile_graph(path, threads=threads, runs=max(3, min(args.iterations, 10)))
    return format_efficiency(package_gflops(manifest), profile, machine_rates(threads),
                             report.inference.median_ms)
