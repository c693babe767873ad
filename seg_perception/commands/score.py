"""``seg-perception score``: mIoU / PQ and latency of a model on held-out synthetic frames."""

from __future__ import annotations

from dataclasses import asdict
import json
import sys

HELP = 'score a model (zoo name or package) on held-out synthetic frames: mIoU, PQ, latency'


def add_arguments(parser) -> None:
    from ..data.synthetic import SYNTHETIC_TEST_SEED
    parser.add_argument('--model', required=True, help='zoo name or model-package directory')
    parser.add_argument('--backend', default='onnxruntime',
                        help='auto, tensorrt, onnxruntime or torch (default %(default)s)')
    parser.add_argument('--device', default='auto', help='auto, cpu or cuda')
    parser.add_argument('--precision', default='auto', help='auto, fp32, fp16 or int8')
    parser.add_argument('--frames', type=int, default=200)
    parser.add_argument('--seed', type=int, default=SYNTHETIC_TEST_SEED)
    parser.add_argument('--json', help='write the report to this file (atomically)')


def main(args) -> int:
    from ..evaluation.scoring import score_synthetic
    from ..packages.atomic import atomic_write_text
    from ..packages.zoo import resolve_model
    from ..segmenter import Segmenter
    from ..tools.progress import ProgressBar
    if args.frames <= 0:
        print('error: --frames must be positive', file=sys.stderr)
        return 2
    try:
        segmenter = Segmenter.from_package(resolve_model(args.model), backend=args.backend,
                                           device=args.device, precision=args.precision)
    except (ValueError, RuntimeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'backend: {getattr(segmenter, "backend_reason", segmenter.backend.info)}')
    bar = ProgressBar(args.frames, 'scoring')
    report = score_synthetic(segmenter, frames=args.frames, seed=args.seed,
                             progress=lambda done, total: bar.update(done))
    bar.finish()
    print(f'{report.frames} frames  mIoU {report.miou:.4f}  PQ {report.pq:.4f} '
          f'(SQ {report.sq:.4f}, RQ {report.rq:.4f}; things {report.pq_things:.4f}, '
          f'stuff {report.pq_stuff:.4f})')
    print('latency ms: ' + ', '.join(f'{k} {v}' for k, v in report.latency_ms.items()))
    if args.json:
        atomic_write_text(args.json, json.dumps(asdict(report), indent=2) + '\n')
    return 0
