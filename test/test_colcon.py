"""The package builds and tests the ROS way: `colcon build` and `colcon test` in a workspace.

The repository is linked into a fresh workspace as ``src/seg_perception``. ``colcon test``
runs a small, fast subset of this suite (the label and manifest tests) so that this test
does not recurse into itself. The README's ``ros2 run seg_perception seg-perception doctor``
runs from the install tree the way ``ros2 run`` does it (ros2cli has no PyPI wheel): the
workspace sourced (``install/setup.sh``: colcon-bash's setup.bash is not installed here), the
package prefix from the ament index, then ``<prefix>/lib/seg_perception/seg-perception``.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
INSIDE_COLCON = 'SEG_PERCEPTION_INSIDE_COLCON'
#: What ``ros2 run PACKAGE EXECUTABLE ARGS...`` does once the workspace is sourced.
ROS2_RUN = (
    'import os, sys\n'
    'from ament_index_python.packages import get_package_prefix\n'
    'package, executable = sys.argv[1:3]\n'
    'path = os.path.join(get_package_prefix(package), "lib", package, executable)\n'
    'assert os.access(path, os.X_OK), path\n'
    'os.execv(path, [path] + sys.argv[3:])\n')


def _env():
    env = dict(os.environ)
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    env[INSIDE_COLCON] = '1'
    env.pop('PYTHONPATH', None)
    return env


def _colcon(workspace, *args):
    return subprocess.run([os.path.join(BIN, 'colcon'), *args], cwd=workspace, env=_env(),
                          capture_output=True, text=True, timeout=300)


def readme_ros2_run(subcommand):
    """The README's ``ros2 run seg_perception seg-perception SUBCOMMAND ...`` as a list."""
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as stream:
        found = re.findall(rf'`(ros2 run seg_perception seg-perception {subcommand}[^`]*)`',
                           stream.read())
    assert found, f'README has no ros2 run ... {subcommand}'
    return shlex.split(found[0])


def _ros2_run_sourced(workspace, command):
    """Source ``install/setup.sh``, print where ``seg_perception`` imports from, then run
    ``command`` (``ros2 run ...`` as a list) as ros2 run does."""
    assert command[:2] == ['ros2', 'run'], command
    python = shlex.quote(sys.executable)
    script = '\n'.join([
        f'. {shlex.quote(str(workspace / "install" / "setup.sh"))}',
        f'{python} -c "import seg_perception; print(\'module:\', seg_perception.__file__)"',
        f'exec {python} -c {shlex.quote(ROS2_RUN)} '
        + ' '.join(shlex.quote(argument) for argument in command[2:])])
    return subprocess.run(['bash', '-c', script], cwd=str(workspace), env=_env(),
                          capture_output=True, text=True, timeout=120)


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

    doctor = _ros2_run_sourced(tmp_path, readme_ros2_run('doctor'))
    output = doctor.stdout + doctor.stderr
    assert doctor.returncode == 0 and 'backend: auto -> ' in output, output
    module = re.search(r'^module: (.*)$', output, re.M).group(1)
    assert module.startswith(str(prefix / 'lib')), f'not the install tree: {module}'

    test = _colcon(str(tmp_path), 'test', '--base-paths', 'src', '--pytest-args',
                   'test/test_labels.py', 'test/packages/test_manifest_and_atomic.py')
    assert test.returncode == 0, test.stdout + test.stderr
    result = _colcon(str(tmp_path), 'test-result', '--verbose')
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r'Summary: (\d+) tests, (\d+) errors, (\d+) failures', result.stdout)
    assert summary, result.stdout
    assert int(summary.group(1)) >= 10 and summary.group(2) == summary.group(3) == '0', \
        result.stdout
