"""Evaluation report: Markdown or HTML with PNG plots drawn by OpenCV (no matplotlib).

Plots, written next to the report:

    iou.png            per-class IoU bars
    confusion.png      confusion matrix, rows normalised (ground truth -> prediction)
    latency.png        Segmenter latency histogram with p50 / p95 marks
    worst_frames.png   the lowest-mIoU frames: image | ground truth | prediction
"""

from __future__ import annotations

import html
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..packages.atomic import atomic_write_bytes, atomic_write_text

_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_GREY = (200, 200, 200)
_BAR = (180, 119, 31)  # BGR of a calm blue
_FONT_SCALE = 0.45


def _cv2():
    import cv2
    return cv2


def _text(canvas: np.ndarray, text: str, origin: Tuple[int, int], scale: float = _FONT_SCALE,
          color=_BLACK, thickness: int = 1) -> None:
    cv2 = _cv2()
    cv2.putText(canvas, text, (int(origin[0]), int(origin[1])), cv2.FONT_HERSHEY_SIMPLEX,
                scale, color, thickness, cv2.LINE_AA)


def _text_width(text: str, scale: float = _FONT_SCALE) -> int:
    cv2 = _cv2()
    (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return width


def _save_png(path: str, bgr: np.ndarray) -> str:
    ok, data = _cv2().imencode('.png', bgr)
    if not ok:
        raise OSError(f'could not encode {path} as PNG')
    atomic_write_bytes(path, data.tobytes())
    return path


def plot_iou_bars(names: Sequence[str], iou: Sequence[Optional[float]], title: str
                  ) -> np.ndarray:
    """BGR uint8 image: one horizontal bar per class (IoU 0..1, n/a when absent)."""
    row, left, right, top = 22, max(_text_width(n) for n in names) + 20, 70, 40
    plot_w = 420
    canvas = np.full((top + row * len(names) + 30, left + plot_w + right, 3), 255, np.uint8)
    cv2 = _cv2()
    _text(canvas, title, (10, 24), 0.6)
    for tick in np.linspace(0.0, 1.0, 6):
        x = left + int(tick * plot_w)
        cv2.line(canvas, (x, top - 4), (x, top + row * len(names)), _GREY, 1)
        _text(canvas, f'{tick:.1f}', (x - 10, top + row * len(names) + 18), 0.4)
    for index, (name, value) in enumerate(zip(names, iou)):
        y = top + index * row
        _text(canvas, name, (left - 10 - _text_width(name), y + 15))
        if value is None:
            _text(canvas, 'n/a', (left + 4, y + 15), 0.4, (120, 120, 120))
            continue
        cv2.rectangle(canvas, (left, y + 3), (left + int(value * plot_w), y + row - 3), _BAR,
                      -1)
        _text(canvas, f'{value * 100:.1f}', (left + int(value * plot_w) + 4, y + 15), 0.4)
    return canvas


def plot_confusion(names: Sequence[str], matrix: np.ndarray, title: str) -> np.ndarray:
    """BGR uint8 image of the row-normalised confusion matrix (rows: ground truth)."""
    cv2 = _cv2()
    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        normalised = np.where(totals > 0, counts / totals, 0.0)
    cell = 26
    label_w = max(_text_width(n) for n in names) + 16
    size = cell * len(names)
    canvas = np.full((label_w + size + 50, label_w + size + 20, 3), 255, np.uint8)
    _text(canvas, title, (10, 24), 0.6)
    top = label_w + 40
    left = label_w
    heat = cv2.applyColorMap((normalised * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    canvas[top:top + size, left:left + size] = cv2.resize(
        heat, (size, size), interpolation=cv2.INTER_NEAREST)
    for index, name in enumerate(names):
        _text(canvas, name, (left - 6 - _text_width(name), top + index * cell + 17))
        strip = np.full((cell, _text_width(name) + 6, 3), 255, np.uint8)
        _text(strip, name, (2, 17))
        rotated = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
        height = rotated.shape[0]
        y0 = top - 4 - height
        if y0 >= 0:
            canvas[y0:y0 + height, left + index * cell:left + (index + 1) * cell] = rotated
        value = normalised[index, index]
        if totals[index, 0] > 0:
            _text(canvas, f'{int(round(value * 100))}',
                  (left + index * cell + 3, top + index * cell + 17), 0.35,
                  _BLACK if value > 0.5 else _WHITE)
    return canvas


def plot_latency(latencies_ms: Sequence[float], title: str) -> np.ndarray:
    """BGR uint8 histogram of latencies with p50 (green) and p95 (red) marks."""
    cv2 = _cv2()
    width, height, left, bottom, top = 560, 300, 50, 40, 40
    canvas = np.full((height, width, 3), 255, np.uint8)
    _text(canvas, title, (10, 24), 0.6)
    values = np.asarray(latencies_ms, dtype=np.float64)
    if values.size == 0:
        _text(canvas, 'no frames', (left, height // 2))
        return canvas
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1.0
    counts, edges = np.histogram(values, bins=30, range=(low, high))
    plot_w, plot_h = width - left - 20, height - top - bottom
    scale = plot_h / float(max(counts.max(), 1))
    bar_w = plot_w / float(len(counts))
    for index, count in enumerate(counts):
        x0 = left + int(index * bar_w)
        x1 = left + int((index + 1) * bar_w) - 1
        cv2.rectangle(canvas, (x0, top + plot_h - int(count * scale)), (x1, top + plot_h),
                      _BAR, -1)
    cv2.line(canvas, (left, top + plot_h), (left + plot_w, top + plot_h), _BLACK, 1)
    for tick in np.linspace(low, high, 5):
        x = left + int((tick - low) / (high - low) * plot_w)
        _text(canvas, f'{tick:.1f}', (x - 12, top + plot_h + 16), 0.4)
    _text(canvas, 'ms', (left + plot_w - 20, top + plot_h + 32), 0.4)
    for name, value, color in (('p50', np.percentile(values, 50), (0, 150, 0)),
                               ('p95', np.percentile(values, 95), (0, 0, 220))):
        x = left + int((value - low) / (high - low) * plot_w)
        cv2.line(canvas, (x, top), (x, top + plot_h), color, 1)
        _text(canvas, f'{name} {value:.1f}', (min(x + 3, width - 90), top + 12), 0.4, color)
    return canvas


def plot_worst_frames(frames: Sequence[Any]) -> Optional[np.ndarray]:
    """BGR uint8 grid, one row per frame: image | ground truth | prediction."""
    if not frames:
        return None
    cv2 = _cv2()
    rows = []
    for frame in frames:
        tiles = [frame.image, frame.gt_color, frame.pred_color]
        height = max(t.shape[0] for t in tiles)
        padded = [np.pad(t, ((0, height - t.shape[0]), (0, 4), (0, 0)), constant_values=255)
                  for t in tiles]
        caption = np.full((22, sum(p.shape[1] for p in padded), 3), 255, np.uint8)
        _text(caption, f'{frame.name}  mIoU {frame.score * 100:.1f}   '
                       '(image | ground truth | prediction)', (4, 16), 0.42)
        body = cv2.cvtColor(np.concatenate(padded, axis=1), cv2.COLOR_RGB2BGR)
        rows.append(np.concatenate([caption, body], axis=0))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    return np.concatenate(rows, axis=0)


def _percent(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value * 100:.1f}'


def _summary_rows(metrics: Dict[str, Any]) -> List[Tuple[str, str]]:
    frames = metrics['frames']
    latency = metrics['latency_ms']
    rows = [('frames read / evaluated / skipped',
             f'{frames["read"]} / {frames["evaluated"]} / {frames["skipped"]}')]
    semantic = metrics.get('semantic')
    if semantic:
        rows.append(('mIoU (%)', _percent(semantic['mean_iou'])))
        rows.append(('pixel accuracy (%)', _percent(semantic['pixel_accuracy'])))
    panoptic = metrics.get('panoptic')
    if panoptic:
        for group, suffix in (('all', ''), ('things', '_things'), ('stuff', '_stuff')):
            rows.append((f'PQ / SQ / RQ ({group}, %)',
                         ' / '.join(_percent(panoptic[k + suffix]) for k in ('pq', 'sq', 'rq'))))
    if latency['count']:
        rows.append(('latency p50 / p95 / max (ms)',
                     f'{latency["p50"]:.1f} / {latency["p95"]:.1f} / {latency["max"]:.1f}'))
    if metrics.get('throughput_fps'):
        rows.append(('throughput (frames/s, whole pipeline)', f'{metrics["throughput_fps"]:.2f}'))
    if metrics.get('interrupted'):
        rows.append(('interrupted', 'yes: results cover the frames evaluated before Ctrl-C'))
    if metrics.get('read_error'):
        rows.append(('read error', metrics['read_error']))
    return rows


def _class_rows(metrics: Dict[str, Any], names: Sequence[str]) -> List[Tuple[str, str, str]]:
    semantic = metrics.get('semantic') or {}
    panoptic = (metrics.get('panoptic') or {}).get('per_class', {})
    return [(name, _percent(semantic.get('iou', {}).get(name)),
             _percent(panoptic.get(name, {}).get('pq'))) for name in names]


def write_report(out_dir: str, metrics: Dict[str, Any], accumulator: Any,
                 report_format: str = 'md') -> str:
    """Write the plots and ``report.md`` / ``report.html`` into ``out_dir``; returns its path.

    Args:
        metrics: The metrics.json content.
        accumulator: The ``EvalAccumulator`` (confusion matrix, latencies, worst frames).
        report_format: ``md`` or ``html``.
    """
    if report_format not in ('md', 'html'):
        raise ValueError(f'report format {report_format!r} is not md or html')
    names = list(accumulator.label_set.names)
    images: List[Tuple[str, str]] = []
    if metrics.get('semantic'):
        iou = [metrics['semantic']['iou'][n] for n in names]
        _save_png(os.path.join(out_dir, 'iou.png'), plot_iou_bars(names, iou, 'IoU per class'))
        images.append(('Per-class IoU', 'iou.png'))
        _save_png(os.path.join(out_dir, 'confusion.png'), plot_confusion(
            names, accumulator.total_confusion().matrix, 'Confusion (rows: ground truth, %)'))
        images.append(('Confusion matrix', 'confusion.png'))
    _save_png(os.path.join(out_dir, 'latency.png'),
              plot_latency(accumulator.latencies_ms, 'Segmenter latency per frame'))
    images.append(('Latency', 'latency.png'))
    worst = plot_worst_frames(accumulator.worst())
    if worst is not None:
        _save_png(os.path.join(out_dir, 'worst_frames.png'), worst)
        images.append(('Worst frames', 'worst_frames.png'))
    model = metrics['model']
    title = f'Evaluation of {model["name"]} ({model["task"]})'
    source = metrics['input']['bag'] or metrics['input']['dataset']
    summary = _summary_rows(metrics)
    classes = _class_rows(metrics, names)
    skips = sorted(metrics['frames']['skip_reasons'].items())
    cameras = [(name, str(values['frames']), _percent(values['mean_iou']), _percent(values['pq']))
               for name, values in sorted(metrics.get('per_camera', {}).items())]
    if len(cameras) > 1:
        summary += [(f'camera {name}: frames / mIoU % / PQ %', ' / '.join(rest))
                    for name, *rest in cameras]
    if report_format == 'md':
        text = _markdown(title, source, model, summary, classes, skips, images)
        path = os.path.join(out_dir, 'report.md')
    else:
        text = _html(title, source, model, summary, classes, skips, images)
        path = os.path.join(out_dir, 'report.html')
    atomic_write_text(path, text)
    return path


def _markdown(title, source, model, summary, classes, skips, images) -> str:
    lines = [f'# {title}', '', f'Input: `{source}`; backend {model["backend"]} '
             f'{model["device"]} {model["precision"]}; network '
             f'{model["network_size"][1]}x{model["network_size"][0]}.', '',
             '| | |', '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in summary]
    lines += ['', '## Per class', '', '| class | IoU (%) | PQ (%) |', '|---|---:|---:|']
    lines += [f'| {n} | {i} | {p} |' for n, i, p in classes]
    if skips:
        lines += ['', '## Skipped frames', '', '| reason | frames |', '|---|---:|']
        lines += [f'| {r} | {c} |' for r, c in skips]
        lines += ['', 'Each skipped frame is listed in `metrics.json` (`frames.skipped_frames`).']
    for caption, file_name in images:
        lines += ['', f'## {caption}', '', f'![{caption}]({file_name})']
    return '\n'.join(lines) + '\n'


def _html(title, source, model, summary, classes, skips, images) -> str:
    e = html.escape
    parts = ['<!DOCTYPE html><html><head><meta charset="utf-8">', f'<title>{e(title)}</title>',
             '<style>body{font-family:sans-serif;max-width:1000px;margin:auto}'
             'td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style></head><body>',
             f'<h1>{e(title)}</h1>',
             f'<p>Input: <code>{e(str(source))}</code>; backend {e(str(model["backend"]))} '
             f'{e(str(model["device"]))} {e(str(model["precision"]))}</p><table>']
    parts += [f'<tr><td>{e(k)}</td><td>{e(v)}</td></tr>' for k, v in summary]
    parts += ['</table><h2>Per class</h2><table><tr><th>class</th><th>IoU</th><th>PQ</th></tr>']
    parts += [f'<tr><td>{e(n)}</td><td>{i}</td><td>{p}</td></tr>' for n, i, p in classes]
    parts.append('</table>')
    if skips:
        parts.append('<h2>Skipped frames</h2><table>')
        parts += [f'<tr><td>{e(r)}</td><td>{c}</td></tr>' for r, c in skips]
        parts.append('</table>')
    for caption, file_name in images:
        parts.append(f'<h2>{e(caption)}</h2><img src="{file_name}" alt="{e(caption)}">')
    parts.append('</body></html>')
    return '\n'.join(parts) + '\n'
