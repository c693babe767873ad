"""Diagnostic statuses of the node as plain data; the node turns them into diagnostic_msgs.

Levels follow ``diagnostic_msgs/DiagnosticStatus``: 0 OK, 1 WARN, 2 ERROR, 3 STALE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from .camera_monitor import CameraSnapshot

OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass(frozen=True)
class DiagnosticEntry:
    """One ``DiagnosticStatus``: name, level, message and string key/values."""

    name: str
    level: int
    message: str
    values: Tuple[Tuple[str, str], ...]
    hardware_id: str = ''


@dataclass(frozen=True)
class ModelInfo:
    """What the node runs, reported in the node status."""

    model: str
    backend: str
    device: str
    precision: str
    backend_reason: str
    network_size: Tuple[int, int]
    task: str


def _ms(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def camera_entry(node_name: str, camera: str, snapshot: CameraSnapshot,
                 model: ModelInfo) -> DiagnosticEntry:
    """The status of one camera.

    Level: WARN when frames arrive but none is published, or when the image subscription
    has an unresolved incompatible QoS; STALE before the first frame; OK otherwise.
    Rejections alone do not raise the level (they are counted and their last reason shown).
    """
    if snapshot.qos_unresolved:
        level, message = WARN, (f'incompatible QoS with the camera publisher '
                                f'({snapshot.incompatible_qos} events)')
    elif snapshot.frames_in == 0:
        level, message = STALE, 'no image received yet'
    elif snapshot.input_hz > 0 and snapshot.output_hz == 0:
        level, message = WARN, 'frames arrive but no segmentation is published'
    else:
        level, message = OK, (f'{snapshot.output_hz:.1f} Hz out, latency p50 '
                              f'{_ms(snapshot.latency.p50_ms)} ms')
    values = (
        ('input_rate_hz', f'{snapshot.input_hz:.2f}'),
        ('output_rate_hz', f'{snapshot.output_hz:.2f}'),
        ('latency_p50_ms', _ms(snapshot.latency.p50_ms)),
        ('latency_p95_ms', _ms(snapshot.latency.p95_ms)),
        ('inference_ms', _ms(snapshot.inference_ms)),
        ('frames_in', str(snapshot.frames_in)),
        ('frames_out', str(snapshot.frames_out)),
        ('dropped', str(snapshot.dropped)),
        ('rejected', str(snapshot.rejected)),
        ('failed', str(snapshot.failed)),
        ('last_rejection', snapshot.last_rejection),
        ('qos_reliability', snapshot.reliability),
        ('incompatible_qos_events', str(snapshot.incompatible_qos)),
        ('backend', model.backend),
        ('model', model.model),
        ('precision', model.precision),
    )
    return DiagnosticEntry(f'{node_name}: {camera}', level, message, values,
                           hardware_id=node_name)


def node_entry(node_name: str, model: ModelInfo, cameras: Tuple[str, ...],
               batch_cameras: bool) -> DiagnosticEntry:
    """The status of the node itself: model, backend, precision and why that backend."""
    values = (
        ('model', model.model),
        ('task', model.task),
        ('backend', model.backend),
        ('device', model.device),
        ('precision', model.precision),
        ('backend_reason', model.backend_reason),
        ('network_size', f'{model.network_size[1]}x{model.network_size[0]}'),
        ('cameras', ', '.join(cameras)),
        ('batch_cameras', str(batch_cameras).lower()),
    )
    return DiagnosticEntry(f'{node_name}: model', OK,
                           f'{model.model} on {model.backend} {model.device} {model.precision}',
                           values, hardware_id=node_name)


def build_report(node_name: str, model: ModelInfo, cameras: Tuple[str, ...],
                 snapshots: List[CameraSnapshot], batch_cameras: bool) -> List[DiagnosticEntry]:
    """Node status followed by one status per camera (same order as ``cameras``)."""
    entries = [node_entry(node_name, model, cameras, batch_cameras)]
    entries.extend(camera_entry(node_name, camera, snapshot, model)
                   for camera, snapshot in zip(cameras, snapshots))
    return entries
