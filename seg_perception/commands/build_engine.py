"""``seg-perception build-engine``: build (once) and cache a package's TensorRT engine.

By default the engine computes the graph outputs the node loads with default parameters
(``pipeline.graph_outputs.DEFAULT_GRAPH_OUTPUTS``, no ``confidence``; for a semantic model
that is its whole graph), built from the graph pruned to them under the key the node looks
up, so a node that may not build (``allow_engine_build`` false) finds it. ``--outputs``
names other graph outputs (what the node loads with other ``publish_`` switches), and
``--all-outputs`` builds the full engine (``publish_confidence`` true).
"""

from __future__ import annotations

import sys
from typing import Optional, Tuple

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
    outputs = parser.add_mutually_exclusive_group()
    outputs.add_argument('--outputs', metavar='NAMES',
                         help='comma-separated graph outputs the engine computes, as the node '
                              'loads them: semantic,instance,panoptic, plus confidence for '
                              'publish_confidence and instance_score for detections (default: '
                              "the node's default parameters: "
                              'semantic,instance,panoptic,instance_score)')
    outputs.add_argument('--all-outputs', action='store_true',
                         help='every graph output (the engine of a node with '
                              'publish_confidence true)')
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
    from ..runtime.tensorrt_backend import tensorrt_available

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
    except (ManifestError, ValueError, OSError) as error:
        print(f'build-engine: {error}', file=sys.stderr)
        return 1
    try:
        outputs = engine_outputs(manifest, args.outputs, args.all_outputs)
    except ValueError as error:
        print(f'build-engine: --outputs: {error}', file=sys.stderr)
        return 2
    try:
        backend, stand_in = _engine(args, manifest, outputs)
    except (ManifestError, BackendError, BackendUnavailable, ValueError, OSError) as error:
        print(f'build-engine: {error}', file=sys.stderr)
        return 1
    if stand_in:
        print(f'no engine pruned to {", ".join(outputs)} yet; a node would use the one '
              'with every output instead (build-engine without --check builds the pruned '
              'one)')
    elif backend.decision.use:
        print(f'{backend.decision.reason}; nothing to build (use --force to rebuild)')
    computed = ', '.join(backend.key.outputs) if backend.key.outputs else \
        f'all ({", ".join(manifest.output_names)})'
    print(f'engine outputs: {computed}')
    print(f'engine: {backend.engine_path}')
    return 0


def engine_outputs(manifest, names: Optional[str], all_outputs: bool) -> Tuple[str, ...]:
    """The graph outputs the engine is built for, as the node's Segmenter asks for them.

    Args:
        manifest: The package's ``ModelManifest``.
        names: ``--outputs``: comma-separated names of the graph contract; None = the
            node's default (``DEFAULT_GRAPH_OUTPUTS``).
        all_outputs: ``--all-outputs``: every output of the graph.

    Returns:
        ``segmenter.segmenter_outputs`` of the request (graph order; a semantic graph keeps
        ``confidence`` for ``instance_score``), so the engine key is the one
        ``Segmenter.from_package(..., outputs=...)`` looks up.

    Raises:
        ValueError: Unknown names, or too few for the Segmenter (one line naming the valid
            ones).
    """
    from ..pipeline.graph_outputs import DEFAULT_GRAPH_OUTPUTS
    from ..segmenter import segmenter_outputs
    if all_outputs:
        return manifest.output_names
    wanted = DEFAULT_GRAPH_OUTPUTS if names is None else \
        [name.strip() for name in names.split(',') if name.strip()]
    return segmenter_outputs(manifest, wanted)


def _engine(args, manifest, outputs: Tuple[str, ...]):
    """Find or build the engine of ``outputs``; returns ``(backend, stand_in)``.

    A cached engine with every output stands in for a missing pruned one in the TensorRT
    backend (the node keeps running). Here that is only said (``stand_in`` true, with
    ``--check``); otherwise the pruned engine is built.
    """
    from ..runtime import tensorrt_backend
    from ..runtime.base import BackendError

    def backend(**options):
        return tensorrt_backend.TensorRTBackend(
            manifest, args.model_dir, precision=args.precision, engine_path=args.engine,
            build_only=True, workspace_mb=args.workspace, fp32_layers=tuple(args.fp32_layers),
            calib_images_dir=args.calib_images, onnx_path=args.onnx, device_index=args.device,
            outputs=outputs, **options)

    if args.force:
        return backend(force_rebuild=True), False
    pruned = outputs != manifest.output_names and tensorrt_backend.onnx_available()
    try:  # first only look (quietly: the stand-in's log line speaks to the node's user)
        found = backend(allow_build=False, progress=lambda _line: None)
    except BackendError:
        if args.check:
            raise
        return backend(), False  # no usable engine of this key: build it
    stand_in = pruned and not found.key.outputs
    if args.check or not stand_in:
        return found, stand_in
    print(f'TensorRT engine: none pruned to {", ".join(outputs)} yet (one with every output '
          f'is cached, {found.engine_path}); building it now')
    return backend(force_rebuild=True), False
