"""Diagnostic statuses of the node as plain data; the node turns them into diagnostic_msgs.

They follow diagnostic_updater's conventions, so that diagnostic_aggregator and
rqt_robot_monitor show the node as they show others: one status per task, named
``<node name>: <task>`` (the node's name without namespace, as the updater names it), a
non-empty ``hardware_id`` (what the status is about: the camera's image topic, the inference
device), levels of ``diagnostic_msgs/DiagnosticStatus`` (0 OK, 1 WARN, 2 ERROR, 3 STALE) and
the period as the ``diagnostic_updater.period`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

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
                 model: ModelInfo, hardware_id: str = '') -> DiagnosticEntry:
    """The status of one camera.

    Level: ERROR when frames were rejected and none was ever published (the message gives
    the count and the last reason); WARN when frames arrive but none is published, when the
    image subscription has an unresolved incompatible QoS, or when the camera_info does not
    fit the images; STALE before the first frame; OK otherwise. Rejections after frames were
    published do not raise the level (they are counted and their last reason shown).

    Args:
        hardware_id: What the status is about (the camera's image topic); default: camera.
    """
    if snapshot.rejected and snapshot.frames_out == 0:
        level, message = ERROR, (f'{snapshot.rejected} frames rejected, none published: '
                                 f'{snapshot.last_rejection}')
    elif snapshot.qos_unresolved:
        level, message = WARN, (f'incompatible QoS with the camera publisher '
                                f'({snapshot.incompatible_qos} events)')
    elif snapshot.frames_in == 0:
        level, message = STALE, 'no image received yet'
    elif snapshot.input_hz > 0 and snapshot.output_hz == 0:
        level, message = WARN, 'frames arrive but no segmentation is published'
    elif snapshot.camera_info_note:
        level, message = WARN, snapshot.camera_info_note
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
        ('camera_info', snapshot.camera_info_note or 'ok'),
        ('backend', model.backend),
        ('model', model.model),
        ('precision', model.precision),
    )
    return DiagnosticEntry(f'{node_name}: {camera}', level, message, values,
                           hardware_id=hardware_id or camera)


def node_entry(node_name: str, model: ModelInfo, cameras: Tuple[str, ...],
               batch_cameras: str) -> DiagnosticEntry:
    """The status of the node itself: model, backend, precision and why that backend.

    Args:
        batch_cameras: The setting and what is in force (``BatchCameras.text`` of
            ``pipeline.worker``), e.g. ``auto (off: CPU backend)``.
    """
    values = (
        ('model', model.model),
        ('task', model.task),
        ('backend', model.backend),
        ('device', model.device),
        ('precision', model.precision),
        ('backend_reason', model.backend_reason),
        ('network_size', f'{model.network_size[1]}x{model.network_size[0]}'),
        ('cameras', ', '.join(cameras)),
        ('batch_cameras', batch_cameras),
    )
    return DiagnosticEntry(f'{node_name}: model', OK,
                           f'{model.model} on {model.backend} {model.device} {model.precision}',
                           values, hardware_id=model.device or 'none')


def build_report(node_name: str, model: ModelInfo, cameras: Tuple[str, ...],
                 snapshots: List[CameraSnapshot], batch_cameras: str,
                 hardware_ids: Sequence[str] = ()) -> List[DiagnosticEntry]:
    """Node status followed by one status per camera (same order as ``cameras``).

    Args:
        node_name: The node's name (``Node.get_name()``), the prefix of every status name.
        batch_cameras: As ``node_entry``.
        hardware_ids: Per camera, its image topic (default: the camera namespace).
    """
    ids = list(hardware_ids) + [''] * (len(cameras) - len(hardware_ids))
    entries = [node_entry(node_name, model, cameras, batch_cameras)]
    entries.extend(camera_entry(node_name, camera, snapshot, model, hardware_id)
                   for camera, snapshot, hardware_id in zip(cameras, snapshots, ids))
    return entries
