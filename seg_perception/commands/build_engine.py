"""``seg-perception build-engine``: build (once) and cache a package's TensorRT engine."""

from __future__ import annotations

import sys

HELP = 'build and cache the TensorRT engine of a model package (run once per Jetson)'


def add_arguments(parser) -> None:
    from ..runtime.engine_options import BUILD_PRECISIONS, DEFAULT_WORKSPACE_MB
    parser.add_argument('model_dir', metavar='MODEL_DIR', help='model package directory')
    parser.add_argument('--precision', choices=BUILD_PRECISIONS, default='fp16',
                        help='engine precision (default fp16)')
    parser.add_argument('--workspace', type=int, default=DEFAULT_WORKSPACE_MB, metavar='MB',
                        help=f'builder workspace limit in MiB (default {DEFAULT_WORKSPACE_MB}; '
                             'lower it if the build is Killed on a small Jetson)')
    parser.add_argument('--calib-images', metavar='DIR',
                        help='folder of PNG/JPEG frames for INT8 calibration')
    parser.add_argument('--fp32-layers', nargs='+', default=[], metavar='PATTERN',
                        help="layer names kept in FP32 (fnmatch pattern, or a substring), "
                             "e.g. '/network/decoder*'; see docs/jetson.md")
    parser.add_argument('--force', action='store_true',
                        help='rebuild even if a matching cached engine exists')
    parser.add_argument('--engine', metavar='PATH',
                        help='engine file (default: next to the package, else '
                             '~/.cache/seg_perception/engines)')
    parser.add_argument('--onnx', metavar='PATH',
                        help="build from this ONNX instead of the package's (e.g. an "
                             'FP16-converted graph for TensorRT 11)')
    parser.add_argument('--device', type=int, default=0, metavar='N',
                        help='CUDA device to build on (default 0); the engine runs there only')
    parser.add_argument('--check', action='store_true',
                        help='only say whether the cached engine can be used; never build')


def main(args) -> int:
    from ..manifest import ManifestError, ModelManifest
    from ..runtime.base import BackendError, BackendUnavailable
    from ..runtime.tensorrt_backend import tensorrt_available, TensorRTBackend

    available, reason = tensorrt_available()
    if not available:
        print(f'build-engine: TensorRT cannot be used on this machine: {reason}',
              file=sys.stderr)
        print('Engines are built on the machine that runs them (a Jetson or a PC with an '
              'NVIDIA GPU); elsewhere use --backend onnxruntime. See docs/jetson.md.',
              file=sys.stderr)
        return 2
    if args.check and args.force:
        print('build-engine: --check and --force exclude each other', file=sys.stderr)
        return 2
    try:
        manifest = ModelManifest.load(args.model_dir)
        backend = TensorRTBackend(
            manifest, args.model_dir, precision=args.precision, engine_path=args.engine,
            force_rebuild=args.force, build_only=True, workspace_mb=args.workspace,
            fp32_layers=tuple(args.fp32_layers), calib_images_dir=args.calib_images,
            allow_build=not args.check, onnx_path=args.onnx, device_index=args.device)
    except (ManifestError, BackendError, BackendUnavailable, ValueError, OSError) as error:
        print(f'build-engine: {error}', file=sys.stderr)
        return 1
    if backend.decision.use:
        print(f'{backend.decision.reason}; nothing to build (use --force to rebuild)')
    print(f'engine: {backend.engine_path}')
    return 0
