"""``seg-perception doctor``: what this machine has, and what ``backend: auto`` would choose.

Every check is cheap and independent: a missing or broken piece becomes a line saying what
is missing and how to get it, never an exception. Backend availability uses the same probes
as ``runtime.select.create_backend``, so the choice printed here is the choice the node
makes (no model is loaded and no backend is created).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

#: rclpy major version -> ROS 2 distribution (for rclpy from pip wheels, no ROS_DISTRO).
RCLPY_DISTROS = {3: 'humble', 4: 'iron', 7: 'jazzy', 9: 'kilted'}
MIN_PYTHON = (3, 10)
JETSON_RELEASE_FILE = '/etc/nv_tegra_release'


@dataclass(frozen=True)
class Check:
    """One line of the report: ``name``, whether it is usable, and the details or the fix."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class AutoChoice:
    """What ``backend: auto`` picks, and why each better candidate was not picked."""

    backend: Optional[str]
    device: Optional[str]
    skipped: Tuple[str, ...]

    @property
    def label(self) -> str:
        if self.backend is None:
            return 'none (no backend can run here)'
        return self.backend if self.backend == 'tensorrt' else f'{self.backend} {self.device}'


def _module_version(module_name: str) -> Tuple[Optional[object], str]:
    """(module, version) or (None, why it cannot be imported)."""
    try:
        module = __import__(module_name)
    except Exception as error:  # noqa: BLE001 - broken installs raise more than ImportError
        return None, f'not importable ({type(error).__name__}: {error})'
    return module, str(getattr(module, '__version__', 'unknown version'))


def check_python() -> Check:
    version = platform.python_version()
    ok = sys.version_info[:2] >= MIN_PYTHON
    detail = f'{version} ({sys.executable})'
    if not ok:
        detail += f'; seg_perception needs Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}'
    return Check('Python', ok, detail)


def check_numpy() -> Check:
    module, version = _module_version('numpy')
    return Check('numpy', module is not None, version)


def check_opencv() -> Check:
    module, version = _module_version('cv2')
    if module is None:
        return Check('OpenCV', False, f'{version}; pip install opencv-python-headless')
    return Check('OpenCV', True, version)


def ros_distro() -> Tuple[Optional[str], str]:
    """The ROS 2 distribution name and how it was found (``ROS_DISTRO`` or rclpy's version)."""
    if os.environ.get('ROS_DISTRO'):
        return os.environ['ROS_DISTRO'], 'ROS_DISTRO'
    import importlib.metadata
    import importlib.util
    spec = importlib.util.find_spec('rclpy')
    if spec is None or spec.origin is None:
        return None, 'rclpy not found'
    match = re.search(r'/opt/ros/([a-z]+)/', spec.origin)
    if match:
        return match.group(1), spec.origin
    for distribution in ('rclpy', 'ros-rclpy'):
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        distro = RCLPY_DISTROS.get(int(version.split('.')[0]))
        if distro:
            return distro, f'rclpy {version}'
    return None, 'rclpy found, distribution unknown'


def check_ros() -> Check:
    distro, source = ros_distro()
    module, version = _module_version('rclpy')
    if module is None:
        return Check('ROS 2 (rclpy)', False,
                     f'rclpy {version}; source /opt/ros/<distro>/setup.bash (the node needs '
                     'it, the tools do not)')
    return Check('ROS 2 (rclpy)', True, f'{distro or "unknown distro"} (from {source})')


def check_gpu() -> Check:
    """GPU and CUDA via torch, else cuda-python, else ``nvidia-smi``, else Jetson files."""
    torch, _ = _module_version('torch')
    if torch is not None and torch.cuda.is_available():
        return Check('CUDA GPU', True, f'{torch.cuda.get_device_name(0)} (CUDA '
                                       f'{torch.version.cuda}, via torch)')
    try:
        from ..runtime import cuda_memory
        cuda_memory.load_cudart()
        if cuda_memory.device_count() > 0:
            gpu = cuda_memory.gpu_properties(0)
            return Check('CUDA GPU', True, f'{gpu.name} (sm {gpu.compute_capability_text}, '
                                           f'{gpu.multiprocessors} SMs, via cuda-python)')
    except Exception:  # noqa: BLE001 - fall through to the next probe (cuda-python's own line)
        pass
    if shutil.which('nvidia-smi'):
        try:
            result = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version',
                          '--format=csv,noheader'], capture_output=True, text=True, timeout=10)
            if result.returncode == 0 and result.stdout.strip():
                return Check('CUDA GPU', True, f'{result.stdout.strip()} (via nvidia-smi)')
        except (OSError, subprocess.SubprocessError):
            pass
    jetson = jetson_release(JETSON_RELEASE_FILE)
    if jetson:
        return Check('CUDA GPU', False, f'{jetson}, but neither torch CUDA nor cuda-python can '
                                        'reach the GPU; pip install cuda-python')
    return Check('CUDA GPU', False, 'no NVIDIA GPU found (no torch CUDA, cuda-python or '
                                    'nvidia-smi)')


def check_cuda_python() -> Check:
    """cuda-python's version, its CUDA runtime and the driver's, and whether they work."""
    from ..runtime import cuda_memory
    from ..runtime.base import BackendUnavailable
    try:
        cuda_memory.load_cudart()
    except BackendUnavailable as error:
        return Check('cuda-python', False, f'{error} (needed by the TensorRT backend only)')
    try:
        driver, runtime = cuda_memory.cuda_versions()
        count = cuda_memory.device_count()
    except RuntimeError as error:  # CudaDriverUnavailable explains; anything else is a reason
        return Check('cuda-python', False, str(error))
    return Check('cuda-python', True,
                 f'{cuda_memory.cuda_python_version()} (CUDA '
                 f'{cuda_memory.version_text(runtime)} runtime, driver CUDA '
                 f'{cuda_memory.version_text(driver)}), {count} GPU(s)')


def jetson_release(path: str = JETSON_RELEASE_FILE) -> Optional[str]:
    """``Jetson L4T R36.3.0`` from /etc/nv_tegra_release, or None elsewhere."""
    try:
        with open(path, 'r', encoding='utf-8') as stream:
            first = stream.readline()
    except OSError:
        return None
    match = re.search(r'R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)', first)
    return f'Jetson L4T R{match.group(1)}.{match.group(2)}' if match else 'Jetson'


def check_tensorrt() -> Check:
    from ..runtime.tensorrt_backend import tensorrt_available
    ok, reason = tensorrt_available()
    return Check('TensorRT', ok, reason)


def check_onnxruntime() -> Check:
    module, version = _module_version('onnxruntime')
    if module is None:
        return Check('ONNX Runtime', False, f'{version}; pip install onnxruntime (or '
                                            'onnxruntime-gpu)')
    providers = ', '.join(module.get_available_providers())
    return Check('ONNX Runtime', True, f'{version}, providers: {providers}')


def check_torch() -> Check:
    module, version = _module_version('torch')
    if module is None:
        return Check('PyTorch', False, f'{version} (needed only to train, export or use the '
                                       'torch backend)')
    cuda = f'CUDA {module.version.cuda}' if module.cuda.is_available() else 'CPU only'
    return Check('PyTorch', True, f'{version}, {cuda}')


def describe_auto_choice() -> AutoChoice:
    """What ``create_backend(..., backend='auto', device='auto')`` would take, and why."""
    from ..runtime import select
    skipped = []
    for candidate in select.candidates_for('auto', 'auto'):
        reason = select._probe(candidate)
        if reason is None:
            return AutoChoice(candidate.backend, candidate.device, tuple(skipped))
        skipped.append(f'{candidate.label}: {reason}')
    return AutoChoice(None, None, tuple(skipped))


def collect_checks() -> List[Check]:
    return [check_python(), check_numpy(), check_opencv(), check_ros(), check_gpu(),
            check_cuda_python(), check_tensorrt(), check_onnxruntime(), check_torch()]


def format_report(checks: List[Check], choice: AutoChoice) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f'{"ok " if c.ok else "-- "} {c.name:<{width}}  {c.detail}' for c in checks]
    lines.append('')
    lines.append(f'backend: auto -> {choice.label}')
    for reason in choice.skipped:
        lines.append(f'  not {reason}')
    return '\n'.join(lines)


def run_doctor() -> Tuple[str, AutoChoice]:
    """The full report text and the automatic choice."""
    checks = collect_checks()
    choice = describe_auto_choice()
    return format_report(checks, choice), choice
