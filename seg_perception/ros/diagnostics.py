"""The node's /diagnostics message: ``pipeline.diagnostics`` entries as diagnostic_msgs."""

from __future__ import annotations

from typing import Any, Sequence

from ..pipeline.diagnostics import DiagnosticEntry


def diagnostic_array(report: Sequence[DiagnosticEntry], stamp: Any) -> Any:
    """A ``diagnostic_msgs/DiagnosticArray`` with one status per entry of ``report``.

    Args:
        report: From ``pipeline.diagnostics.build_report``.
        stamp: ``builtin_interfaces/Time`` of the array's header.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    array = DiagnosticArray()
    array.header.stamp = stamp
    for entry in report:
        array.status.append(DiagnosticStatus(
            level=bytes([entry.level]), name=entry.name, message=entry.message,
            hardware_id=entry.hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in entry.values]))
    return array
