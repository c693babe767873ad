"""pipeline/rate_stats.py, camera_monitor.py and diagnostics.py: rates, latency windows,
per-camera monitors and the diagnostics report built from them."""

import pytest

from seg_perception.pipeline.camera_monitor import CameraMonitor
from seg_perception.pipeline.diagnostics import (
    build_report,
    ERROR,
    ModelInfo,
    OK,
    STALE,
    WARN,
)
from seg_perception.pipeline.rate_stats import LatencyWindow, RateMeter


def test_rate_meter_and_latency_window():
    meter = RateMeter(window_s=2.0)
    assert meter.rate(0.0) == 0.0
    for index in range(31):
        meter.record(index * 0.1)  # 10 Hz for 3 s
    assert meter.rate(3.0) == pytest.approx(10.0)
    assert meter.rate(10.0) == 0.0  # stream stopped
    assert meter.count == 31
    window = LatencyWindow(size=100)
    assert window.summary().p50_ms is None
    for value in range(1, 201):
        window.record(value / 1000.0)  # only 101..200 ms stay
    summary = window.summary()
    assert summary.samples == 100
    assert summary.p50_ms == pytest.approx(150.5)
    assert summary.p95_ms == pytest.approx(195.05)
    assert summary.max_ms == pytest.approx(200.0)


def test_diagnostics_levels_and_values():
    model = ModelInfo('enet_panoptic', 'onnxruntime', 'cpu', 'fp32', 'why', (128, 256),
                      'panoptic')
    idle, busy, stuck = CameraMonitor(), CameraMonitor(), CameraMonitor()
    for index in range(11):
        busy.frame_received(index * 0.1)
        busy.frame_published(index * 0.1 + 0.05, 0.05, 40.0)
        stuck.frame_received(index * 0.1)
    busy.frame_rejected("unsupported image encoding 'foo'")
    report = build_report('seg', model, ('idle', 'busy', 'stuck'),
                          [m.snapshot(1.0, dropped=3) for m in (idle, busy, stuck)],
                          'auto (off: CPU backend)',
                          ['/idle/image_raw', '/busy/image_raw'])
    assert [entry.name for entry in report] == ['seg: model', 'seg: idle', 'seg: busy',
                                                'seg: stuck']
    assert [entry.level for entry in report] == [OK, STALE, OK, WARN]
    assert [entry.hardware_id for entry in report] == ['cpu', '/idle/image_raw',
                                                       '/busy/image_raw', 'stuck']
    values = dict(report[2].values)
    assert values['input_rate_hz'] == '10.00' and values['latency_p50_ms'] == '50.0'
    assert values['rejected'] == '1' and 'foo' in values['last_rejection']
    assert values['dropped'] == '3' and values['backend'] == 'onnxruntime'
    assert dict(report[0].values)['backend_reason'] == 'why'
    assert dict(report[0].values)['batch_cameras'] == 'auto (off: CPU backend)'


def test_incompatible_qos_warns_until_the_subscription_is_recreated():
    model = ModelInfo('m', 'onnxruntime', 'cpu', 'fp32', '', (64, 128), 'panoptic')
    monitor = CameraMonitor()
    monitor.set_reliability('reliable')
    monitor.qos_incompatible()
    entry = build_report('/n', model, ('cam',), [monitor.snapshot(0.0, 0)], 'auto')[1]
    assert entry.level == WARN and 'incompatible QoS' in entry.message
    monitor.set_reliability('best_effort')
    entry = build_report('/n', model, ('cam',), [monitor.snapshot(0.0, 0)], 'auto')[1]
    assert entry.level == STALE
    values = dict(entry.values)
    assert values['incompatible_qos_events'] == '1' and values['qos_reliability'] == 'best_effort'


def test_all_frames_rejected_is_an_error_with_reason_and_count():
    model = ModelInfo('m', 'onnxruntime', 'cpu', 'fp32', '', (64, 128), 'panoptic')
    monitor = CameraMonitor()
    for _ in range(3):
        monitor.frame_rejected("unsupported image encoding 'rgb9'")
    entry = build_report('n', model, ('cam',), [monitor.snapshot(0.0, 0)], 'auto')[1]
    assert entry.level == ERROR
    assert entry.message == "3 frames rejected, none published: unsupported image encoding 'rgb9'"
    monitor.frame_received(0.0)
    monitor.frame_published(0.1, 0.1, 10.0)
    monitor.camera_info_checked('image is 640x480 but its camera_info (1024x512) implies ...')
    entry = build_report('n', model, ('cam',), [monitor.snapshot(0.2, 0)], 'auto')[1]
    assert entry.level == WARN and entry.message.startswith('image is 640x480')
    assert dict(entry.values)['camera_info'].startswith('image is 640x480')
    monitor.camera_info_checked('')
    entry = build_report('n', model, ('cam',), [monitor.snapshot(0.2, 0)], 'auto')[1]
    assert entry.level == OK and dict(entry.values)['camera_info'] == 'ok'
