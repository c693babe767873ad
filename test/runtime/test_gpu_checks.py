"""scripts/gpu_checks.py: without a GPU it stops with the reason; its torch plumbing (zoo
weights and heads at another input size, agreement, latency, the docs row) runs on the CPU."""

import importlib.util
import os
import subprocess
import sys

import fake_cuda
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'gpu_checks.py')


def _script():
    spec = importlib.util.spec_from_file_location('gpu_checks', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_why_and_exits_2():
    gpu_checks = _script()
    if gpu_checks.torch_problem() is None or gpu_checks.cuda_python_problem() is None:
        pytest.skip('a CUDA GPU is usable here: the script would run its checks')
    result = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith('gpu_checks: no CUDA GPU usable here: cuda-python: ')
    assert 'torch CUDA: torch ' in result.stderr and '\n' not in result.stderr.strip()
    result = subprocess.run([sys.executable, SCRIPT, '/nonexistent'], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == ('gpu_checks: no model package at /nonexistent/enet/model, '
                                     '/nonexistent/deeplab/model')


@pytest.mark.parametrize('model', ['enet_panoptic', 'deeplabv3plus_mobilenetv3_panoptic'])
def test_zoo_model_at_another_size_agreement_and_latency_on_cpu(model, torch_one_thread):
    gpu_checks = _script()
    figures = gpu_checks.torch_figures(gpu_checks.zoo_package(model), 64, 128, frames=1,
                                       iterations=2, device='cpu', low='fp32')
    assert figures['size'] == '128x64'
    assert figures['semantic_agreement'] == figures['panoptic_agreement'] == 1.0
    assert figures['fp32']['total_p50_ms'] > 0 and figures['fp32']['inference_p50_ms'] > 0
    figures['fp16'] = figures['fp32']
    row = gpu_checks.markdown_row(figures, 'NVIDIA H200')
    assert row.startswith('| ') and ' | NVIDIA H200 | FP32 / FP16 | 128x64 | ' in row
    assert 'FP16 vs FP32 100.000 % of pixels |' in row


def test_cuda_python_section_runs_against_the_stand_in(monkeypatch):
    """The plumbing of part 1 (threads, copies, error and leak checks) against the
    host-memory stand-in; the real GPU run is the script's job."""
    gpu_checks = _script()
    fake = fake_cuda.install(monkeypatch, fake_cuda.FakeCudart('ok', name=b'NVIDIA H200'))
    monkeypatch.setattr(gpu_checks, 'BANDWIDTH_BYTES', 1 << 20)
    monkeypatch.setattr(gpu_checks, 'LEAK_BLOCK_BYTES', 1 << 20)
    monkeypatch.setattr(gpu_checks, 'ROUND_TRIPS', 5)
    assert gpu_checks.cuda_python_problem() is None
    figures = gpu_checks.cuda_python_checks()
    assert figures['gpu'] == 'NVIDIA H200' and figures['thread_round_trips'] == 40
    assert figures['driver_cuda'] == figures['runtime_cuda'] == '12.6'
    assert not fake.device_memory and not fake.host_memory and not fake.streams
    threads = {call[0] for call in fake.calls if call[2] == 'cudaStreamCreate'}
    assert len(threads) == 9                     # the main thread and 8 workers
