"""``seg-perception check-onnx``: report ONNX nodes TensorRT 8.5 / 10.x cannot parse."""

from __future__ import annotations

import sys

HELP = 'check an ONNX graph against the TensorRT 8.5 / 10.x ONNX parser support matrix'


def add_arguments(parser) -> None:
    parser.add_argument('onnx_file', metavar='FILE',
                        help='ONNX model, or a model package directory (its model.onnx)')
    parser.add_argument('--trt', default='8.5,10', metavar='VERSIONS',
                        help='comma-separated TensorRT versions to check (8.5, 10); '
                             'default: %(default)s')


def main(args) -> int:
    """Exit status: 0 = compatible, 1 = issues found, 2 = unreadable file / bad arguments."""
    import os

    from ..export.tensorrt_check import check_tensorrt_compatibility, format_report, OnnxCheckError
    path = args.onnx_file
    if os.path.isdir(path):
        from ..manifest import ManifestError, ModelManifest
        try:
            path = ModelManifest.load(path).onnx_path(path)
        except ManifestError as error:
            print(f'check-onnx: {error}', file=sys.stderr)
            return 2
    try:
        issues = check_tensorrt_compatibility(path, args.trt)
    except OnnxCheckError as error:
        print(f'check-onnx: {error}', file=sys.stderr)
        return 2
    print(format_report(issues, path, args.trt))
    return 1 if issues else 0
