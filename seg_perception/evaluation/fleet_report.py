"""Merging the bags of a fleet evaluation exactly, and its metrics file and report.

``merge_results`` adds the bags' confusion matrices and PQ sums (in input order) and
concatenates their latencies and skips; ``write_fleet_outputs`` writes
``fleet_metrics.json`` and ``fleet_report.md``: the totals, per-bag rows worst first,
per-class IoU and PQ tables, the latency distribution, skipped frames with their reasons
and failed bags with their errors.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .fleet import BagResult, FLEET_METRICS_FILE, FleetConfig

FLEET_REPORT_FILE = 'fleet_report.md'
#: Skipped frames listed individually (all are counted).
MAX_LISTED_SKIPS = 50


def _pct(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value * 100:.2f}'


def _bag_row(result: BagResult) -> Dict[str, Any]:
    accumulator = result.accumulator
    row: Dict[str, Any] = {'name': result.name, 'bag': result.bag, 'error': result.error,
                           'seconds': round(result.seconds, 3)}
    if accumulator is None or result.error:
        return row
    scores = accumulator.scores_dict()
    row.update(read=accumulator.read, evaluated=accumulator.evaluated,
               skipped=accumulator.skipped_total,
               mean_iou=scores['semantic']['mean_iou'] if scores['semantic'] else None,
               pq=scores['panoptic']['pq'] if scores['panoptic'] else None,
               latency_p50_ms=accumulator.latency_summary()['p50'])
    return row


def _worst_first(row: Dict[str, Any]):
    """Sort key: failed bags first, then ascending mIoU, PQ (unscored bags last), name."""
    if row['error']:
        return (0, 0.0, 0.0, row['name'])
    unscored = row.get('mean_iou') is None
    return (2 if unscored else 1, row.get('mean_iou') or 0.0, row.get('pq') or 0.0,
            row['name'])


def latency_distribution(latencies: Sequence[float]) -> Dict[str, Any]:
    if not latencies:
        return {'count': 0}
    values = np.asarray(latencies, dtype=np.float64)
    data: Dict[str, Any] = {'count': int(values.size), 'mean': float(values.mean())}
    for q in (50, 90, 95, 99):
        data[f'p{q}'] = float(np.percentile(values, q))
    data['min'], data['max'] = float(values.min()), float(values.max())
    edges = np.percentile(values, np.linspace(0, 100, 11))
    counts, edges = np.histogram(values, bins=np.unique(edges) if values.size > 1 else 1)
    data['histogram'] = {'edges_ms': [float(e) for e in edges],
                         'counts': [int(c) for c in counts]}
    return data


def merge_results(results: List[BagResult], runner: str, wall_s: float) -> Dict[str, Any]:
    """The fleet metrics: the bags that succeeded merged exactly, in input order."""
    ok = [r for r in results if r.accumulator is not None and not r.error]
    metrics: Dict[str, Any] = {
        'runner': runner, 'wall_s': round(wall_s, 3),
        'bags': {'total': len(results), 'evaluated': len(ok),
                 'failed': len(results) - len(ok)},
        'failed_bags': [{'name': r.name, 'bag': r.bag, 'error': r.error}
                        for r in results if r not in ok],
        'per_bag': sorted((_bag_row(r) for r in results), key=_worst_first),
    }
    if not ok:
        metrics.update(frames={'read': 0, 'evaluated': 0, 'skipped': 0, 'skip_reasons': {}},
                       semantic=None, panoptic=None, latency_ms={'count': 0})
        return metrics
    first = ok[0].accumulator
    confusion, panoptic = first.total_confusion(), first.total_panoptic()
    for result in ok[1:]:
        confusion += result.accumulator.total_confusion()
        panoptic += result.accumulator.total_panoptic()
    scored = sum(s.frames for r in ok for s in r.accumulator.cameras.values())
    panoptic_frames = sum(s.panoptic_frames for r in ok
                          for s in r.accumulator.cameras.values())
    names = first.label_set.names
    reasons: Dict[str, int] = {}
    skipped: List[Dict[str, Any]] = []
    for result in ok:
        for reason, count in result.accumulator.skip_counts.items():
            reasons[reason] = reasons.get(reason, 0) + count
        skipped += [dict(skip, bag=result.name) for skip in result.accumulator.skipped]
    metrics['frames'] = {
        'read': sum(r.accumulator.read for r in ok),
        'evaluated': sum(r.accumulator.evaluated for r in ok),
        'skipped': sum(reasons.values()), 'skip_reasons': dict(sorted(reasons.items())),
        'skipped_frames': skipped[:MAX_LISTED_SKIPS]}
    metrics['semantic'] = confusion.to_dict(names) if scored else None
    metrics['panoptic'] = panoptic.result().to_dict() if panoptic_frames else None
    metrics['latency_ms'] = latency_distribution(
        [value for r in ok for value in r.accumulator.latencies_ms])
    return metrics


def write_fleet_outputs(fleet: FleetConfig, metrics: Dict[str, Any]) -> None:
    from ..packages.atomic import atomic_write_text
    atomic_write_text(os.path.join(fleet.out_dir, FLEET_METRICS_FILE),
                      json.dumps(metrics, indent=2, sort_keys=True) + '\n')
    if fleet.template.report_format != 'none':
        atomic_write_text(os.path.join(fleet.out_dir, FLEET_REPORT_FILE),
                          fleet_markdown(metrics, fleet.template.model))


def fleet_markdown(metrics: Dict[str, Any], model: str) -> str:
    """The fleet report in Markdown (module docstring)."""
    bags, frames = metrics['bags'], metrics['frames']
    lines = [f'# Fleet evaluation of {model}', '',
             f'{bags["total"]} bags ({bags["evaluated"]} evaluated, {bags["failed"]} failed) '
             f'on {metrics["runner"]} in {metrics["wall_s"]:.1f} s; frames: read '
             f'{frames["read"]}, evaluated {frames["evaluated"]}, skipped {frames["skipped"]}.',
             '']
    semantic, panoptic = metrics['semantic'], metrics['panoptic']
    if semantic:
        lines.append(f'- mIoU {_pct(semantic["mean_iou"])} %, pixel accuracy '
                     f'{_pct(semantic["pixel_accuracy"])} %')
    if panoptic:
        lines.append(f'- PQ {_pct(panoptic["pq"])} (things {_pct(panoptic["pq_things"])}, '
                     f'stuff {_pct(panoptic["pq_stuff"])}), SQ {_pct(panoptic["sq"])}, '
                     f'RQ {_pct(panoptic["rq"])}')
    lines += ['', '## Bags, worst first', '',
              '| bag | frames | skipped | mIoU % | PQ % | p50 ms | error |',
              '| --- | ---: | ---: | ---: | ---: | ---: | --- |']
    for row in metrics['per_bag']:
        p50 = row.get('latency_p50_ms')
        lines.append(f'| {row["name"]} | {row.get("evaluated", "")} | '
                     f'{row.get("skipped", "")} | {_pct(row.get("mean_iou"))} | '
                     f'{_pct(row.get("pq"))} | {"" if p50 is None else f"{p50:.1f}"} | '
                     f'{row["error"] or ""} |')
    if semantic or panoptic:
        lines += ['', '## Classes', '', '| class | IoU % | PQ % | SQ % | RQ % |',
                  '| --- | ---: | ---: | ---: | ---: |']
        per_class = panoptic['per_class'] if panoptic else {}
        for name in (semantic['iou'] if semantic else per_class):
            pq = per_class.get(name, {})
            iou = semantic['iou'].get(name) if semantic else None
            lines.append(f'| {name} | {_pct(iou)} | {_pct(pq.get("pq"))} | '
                         f'{_pct(pq.get("sq"))} | {_pct(pq.get("rq"))} |')
    latency = metrics['latency_ms']
    if latency.get('count'):
        lines += ['', '## Latency', '', '| frames | mean | p50 | p90 | p95 | p99 | max |',
                  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
                  f'| {latency["count"]} | ' + ' | '.join(
                      f'{latency[k]:.1f}' for k in ('mean', 'p50', 'p90', 'p95', 'p99', 'max'))
                  + ' |', '', 'Histogram (deciles of the fleet, ms):', '']
        edges, counts = latency['histogram']['edges_ms'], latency['histogram']['counts']
        lines += [f'- {edges[i]:.1f}-{edges[i + 1]:.1f}: {count}'
                  for i, count in enumerate(counts)]
    if frames['skipped']:
        lines += ['', '## Skipped frames', '']
        lines += [f'- {reason}: {count}' for reason, count in frames['skip_reasons'].items()]
        lines += ['', '| bag | topic | stamp ns | reason | detail |',
                  '| --- | --- | ---: | --- | --- |']
        lines += [f'| {s["bag"]} | {s["topic"]} | {s["stamp_ns"]} | {s["reason"]} | '
                  f'{s["detail"]} |' for s in frames['skipped_frames']]
    if metrics['failed_bags']:
        lines += ['', '## Failed bags (left out of the totals)', '']
        lines += [f'- {f["name"]} ({f["bag"]}): {f["error"]}' for f in metrics['failed_bags']]
    return '\n'.join(lines) + '\n'
