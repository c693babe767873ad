"""``seg-perception doctor`` on this machine: every piece reported, the auto choice explained."""

import importlib.util

import pytest

from seg_perception import cli
from seg_perception.runtime.tensorrt_backend import tensorrt_available
from seg_perception.tools.doctor import (
    AutoChoice,
    Check,
    collect_checks,
    describe_auto_choice,
    format_report,
    jetson_release,
    ros_distro,
    run_doctor,
)

EXPECTED_NAMES = ['Python', 'numpy', 'OpenCV', 'ROS 2 (rclpy)', 'CUDA GPU', 'cuda-python',
                  'TensorRT', 'ONNX Runtime', 'PyTorch']


@pytest.fixture(scope='module')
def doctor_run():
    return run_doctor()


def test_report_lists_every_piece(doctor_run):
    report, _ = doctor_run
    for name in EXPECTED_NAMES:
        assert name in report
    assert 'backend: auto -> ' in report


def test_checks_match_this_machine():
    checks = {c.name: c for c in collect_checks()}
    assert [c for c in EXPECTED_NAMES] == list(checks)
    assert checks['Python'].ok and checks['numpy'].ok
    assert checks['ONNX Runtime'].ok and 'CPUExecutionProvider' in checks['ONNX Runtime'].detail
    trt_ok, trt_reason = tensorrt_available()
    assert checks['TensorRT'] == Check('TensorRT', trt_ok, trt_reason)
    if importlib.util.find_spec('rclpy') is not None:
        assert checks['ROS 2 (rclpy)'].ok


def test_auto_choice_and_reasons_for_better_backends(doctor_run):
    _, choice = doctor_run
    assert choice == describe_auto_choice()
    trt_ok, trt_reason = tensorrt_available()
    if trt_ok:
        assert choice.backend == 'tensorrt' and choice.skipped == ()
        return
    assert choice.backend is not None        # onnxruntime CPU is always in the venv
    assert choice.skipped[0] == f'tensorrt: {trt_reason}'
    if choice.device == 'cpu':
        labels = [line.split(':')[0] for line in choice.skipped]
        assert labels == ['tensorrt', 'onnxruntime CUDA', 'torch CUDA']


def test_report_format():
    checks = [Check('Python', True, '3.10.12'), Check('TensorRT', False, 'not installed')]
    text = format_report(checks, AutoChoice('onnxruntime', 'cpu', ('tensorrt: not installed',)))
    assert text.splitlines() == [
        'ok  Python    3.10.12',
        '--  TensorRT  not installed',
        '',
        'backend: auto -> onnxruntime cpu',
        '  not tensorrt: not installed',
    ]
    assert 'no backend can run here' in format_report(checks, AutoChoice(None, None, ()))


def test_ros_distro_from_environment(monkeypatch):
    monkeypatch.setenv('ROS_DISTRO', 'humble')
    assert ros_distro() == ('humble', 'ROS_DISTRO')
    monkeypatch.delenv('ROS_DISTRO')
    distro, source = ros_distro()
    if importlib.util.find_spec('rclpy') is None:
        assert distro is None
    else:
        assert distro in ('humble', 'iron', 'jazzy', 'kilted', 'rolling', None) and source


def test_jetson_release_file(tmp_path):
    release = tmp_path / 'nv_tegra_release'
    release.write_text('# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, '
                       'EABI: aarch64, DATE: Fri Jul 19 23:24:25 UTC 2024\n')
    assert jetson_release(str(release)) == 'Jetson L4T R36.3.0'
    assert jetson_release(str(tmp_path / 'missing')) is None


def test_doctor_command(capsys):
    assert cli.main(['doctor']) == 0
    out = capsys.readouterr().out
    assert 'backend: auto -> ' in out and 'TensorRT' in out
    assert cli.main(['doctor', '--strict']) == 0    # some backend always runs in the venv
