"""The package builds and tests the ROS way: `colcon build` and `colcon test` in a workspace.

The repository is linked into a fresh workspace as ``src/seg_perception``. ``colcon test``
runs a small, fast subset of this suite (the label and manifest tests) so that this test
does not recurse into itself.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
INSIDE_COLCON = 'SEG_PERCEPTION_INSIDE_COLCON'


def _colcon(workspace, *args):
    env = dict(os.environ)
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    env[INSIDE_COLCON] = '1'
    return subprocess.run([os.path.join(BIN, 'colcon'), *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(os.environ.get(INSIDE_COLCON) == '1', reason='already inside colcon test')
@pytest.mark.skipif(shutil.which('colcon', path=BIN) is None, reason='colcon not installed')
def test_colcon_build_and_test(tmp_path):
    os.makedirs(tmp_path / 'src')
    os.symlink(ROOT, tmp_path / 'src' / 'seg_perception')
    build = _colcon(str(tmp_path), 'build', '--base-paths', 'src')
    assert build.returncode == 0, build.stdout + build.stderr
    prefix = tmp_path / 'install' / 'seg_perception'
    for executable in ('seg_perception_node', 'seg-perception'):
        assert (prefix / 'lib' / 'seg_perception' / executable).is_file()
    share = prefix / 'share' / 'seg_perception'
    assert (share / 'package.xml').is_file()
    assert (prefix.parent.parent / 'install' / 'seg_perception' / 'share' / 'ament_index'
            / 'resource_index' / 'packages' / 'seg_perception').is_file()
    zoo = list(prefix.glob('lib/python*/site-packages/seg_perception/zoo/*/model.onnx'))
    assert len(zoo) >= 2, 'zoo model packages are not installed'
    for folder in ('launch', 'config'):
        expected = sorted(f for f in os.listdir(os.path.join(ROOT, folder))
                          if not f.startswith('.'))
        assert sorted(os.listdir(share / folder)) == expected

    test = _colcon(str(tmp_path), 'test', '--base-paths', 'src', '--pytest-args',
                   'test/test_labels.py', 'test/packages/test_manifest_and_atomic.py')
    assert test.returncode == 0, test.stdout + test.stderr
    result = _colcon(str(tmp_path), 'test-result', '--verbose')
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r'Summary: (\d+) tests, (\d+) errors, (\d+) failures', result.stdout)
    assert summary, result.stdout
    assert int(summary.group(1)) >= 10 and summary.group(2) == summary.group(3) == '0', \
        result.stdout
