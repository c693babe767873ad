"""The evaluator's results: the metrics.json content, the report, and ``EvalSummary``.

metrics.json holds the model and input description, the frame accounting
(``read == evaluated + skipped``), latency and throughput, and the scores of
``EvalAccumulator.scores_dict``. It is written whatever happened, so a run that evaluated
nothing, or whose output bag failed, still says why.

Exit codes (``EvalSummary.exit_code``): 0 done; 3 the bag could not be read to its end;
4 no frame could be evaluated (the reasons are counted); 5 the output bag could not be
written (it was removed; the metrics are complete); 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple

from ..packages.atomic import atomic_write_text
from .accumulators import EvalAccumulator
from .config import EvalConfig, METRICS_FILE
from .sources import SourceState

EXIT_OK, EXIT_READ_ERROR, EXIT_INTERRUPTED = 0, 3, 130
EXIT_NOTHING_EVALUATED, EXIT_OUTPUT_ERROR = 4, 5


@dataclass
class EvalSummary:
    """Result of ``run_evaluation``.

    Attributes:
        metrics: The content of metrics.json.
        metrics_path, report_path, output_bag: Files written (None when not written).
        interrupted: Stopped by SIGINT / ``stop`` before the end of the input.
        read_error: Why reading stopped early (corrupt or truncated bag), or None.
        output_error: Why the output bag could not be written (it was removed), or None.
        accumulator: The run's ``EvalAccumulator`` (confusion matrices, PQ sums, latencies,
            skips), which a fleet evaluation adds up exactly across bags.
    """

    metrics: Dict[str, Any]
    metrics_path: str
    report_path: Optional[str] = None
    output_bag: Optional[str] = None
    interrupted: bool = False
    read_error: Optional[str] = None
    output_error: Optional[str] = None
    accumulator: Any = field(default=None, repr=False)

    @property
    def nothing_evaluated(self) -> bool:
        return self.metrics['frames']['evaluated'] == 0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.read_error:
            return EXIT_READ_ERROR
        if self.nothing_evaluated:
            return EXIT_NOTHING_EVALUATED
        return EXIT_OUTPUT_ERROR if self.output_error else EXIT_OK


def nothing_evaluated_line(metrics: Dict[str, Any]) -> str:
    """One line for a run that evaluated no frame, with the skip reasons counted."""
    frames = metrics['frames']
    if not frames['read']:
        return 'the input held no image to evaluate'
    reasons = ', '.join(f'{reason} {count}' for reason, count in
                        sorted(frames['skip_reasons'].items(), key=lambda item: -item[1]))
    return (f'none of the {frames["read"]} frames read could be evaluated ({reasons}); '
            'metrics.json lists each with its reason')


def build_metrics(config: EvalConfig, segmenter: Any, accumulator: EvalAccumulator,
                  source_state: SourceState, streams: Sequence[Any], wall_s: float,
                  interrupted: bool, bag_path: Optional[str],
                  output_error: Optional[str] = None) -> Dict[str, Any]:
    """The metrics.json content of a finished run.

    Args:
        config: The run's options.
        segmenter: The ``Segmenter`` that ran (model name, task, network size, backend).
        accumulator: Scores, latencies and frame accounting of the run.
        source_state: The source's read count, read error and unmatched labels.
        streams: The bag's ``CameraStream`` list (empty in folder mode).
        wall_s: Wall time of the three stages.
        interrupted: Stopped before the end of the input.
        bag_path: The output bag, or None.
        output_error: Why the output bag was not written to the end (it was removed).
    """
    acc = accumulator
    info = getattr(segmenter.backend, 'info', None)
    metrics: Dict[str, Any] = {
        'model': {'name': segmenter.manifest.name, 'task': segmenter.manifest.task,
                  'network_size': list(segmenter.network_size),
                  'backend': getattr(info, 'name', None),
                  'device': getattr(info, 'device', None),
                  'precision': getattr(info, 'precision', None)},
        'input': {'bag': config.bag, 'dataset': config.dataset_dir,
                  'labels_dir': config.labels_dir, 'split': config.split,
                  'cameras': [_stream_dict(s) for s in streams]},
        'interrupted': interrupted,
        'read_error': source_state.read_error,
        'frames': {
            'read': acc.read, 'evaluated': acc.evaluated, 'skipped': acc.skipped_total,
            'evaluated_without_labels': acc.without_labels,
            'skip_reasons': dict(sorted(acc.skip_counts.items())),
            'skipped_frames': acc.skipped,
            'unmatched_labels': source_state.unmatched_labels,
        },
        'latency_ms': acc.latency_summary(),
        'throughput_fps': acc.evaluated / wall_s if wall_s > 0 else None,
        'wall_s': wall_s,
        'output_bag': bag_path,
        'output_bag_error': output_error,
    }
    metrics.update(acc.scores_dict())
    return metrics


def write_results(config: EvalConfig, metrics: Dict[str, Any], accumulator: EvalAccumulator,
                  interrupted: bool, read_error: Optional[str],
                  bag_path: Optional[str], output_error: Optional[str] = None) -> EvalSummary:
    """Write the report (unless ``report_format`` is ``none``), then metrics.json.

    Args:
        config: The run's options (``out_dir``, ``report_format``).
        metrics: From ``build_metrics``; gains ``report`` (the report's path) when written.
        accumulator: The run's accumulator (the report's plots and worst frames).
        interrupted, read_error, bag_path, output_error: Copied into the summary.
    """
    metrics_path = os.path.join(config.out_dir, METRICS_FILE)
    report_path = None
    if config.report_format != 'none':
        from .report import write_report
        report_path = write_report(config.out_dir, metrics, accumulator, config.report_format)
        metrics['report'] = report_path
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + '\n')
    return EvalSummary(metrics=metrics, metrics_path=metrics_path, report_path=report_path,
                       output_bag=bag_path, interrupted=interrupted, read_error=read_error,
                       output_error=output_error)


def _stream_dict(stream: Any) -> Dict[str, Any]:
    return {'namespace': stream.namespace, 'image_topic': stream.image_topic,
            'label_topic': stream.label_topic, 'camera_info_topic': stream.camera_info_topic,
            'labels_city': stream.city}


def accounting(metrics: Dict[str, Any]) -> Tuple[int, int, int]:
    """(read, evaluated, skipped) of a metrics.json dict."""
    frames = metrics['frames']
    return frames['read'], frames['evaluated'], frames['skipped']
