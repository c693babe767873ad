"""``seg-perception doctor``: report this machine's runtime pieces and the automatic backend."""

from __future__ import annotations

HELP = 'show Python, ROS, CUDA, TensorRT, ONNX Runtime and torch here, and what backend auto picks'


def add_arguments(parser) -> None:
    parser.add_argument('--strict', action='store_true',
                        help='exit with status 1 when no backend can run here')


def main(args) -> int:
    from ..tools.doctor import run_doctor
    report, choice = run_doctor()
    print(report)
    return 1 if args.strict and choice.backend is None else 0
