"""The Jazzy environment mirrors the Kilted one, and CI runs the ROS tests on both.

requirements.txt (Kilted, ``ros-*`` wheels) and requirements-jazzy.txt (``ros-jazzy-*``
wheels) must pin the same versions of everything that is not a ROS wheel, and Jazzy must
have a wheel for each of Kilted's ROS packages. ``.ci/run`` runs ``make test`` (the
README's command), then ``make test-jazzy``.
"""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pins(name):
    """Requirement name (lower case) -> version of a ``name==version`` requirements file."""
    result = {}
    with open(os.path.join(ROOT, name), 'r', encoding='utf-8') as stream:
        for line in stream:
            line = line.split('#', 1)[0].strip()
            if line:
                match = re.fullmatch(r'([A-Za-z0-9_.-]+)==([^\s;]+)', line)
                assert match, f'{name}: {line!r} is not name==version'
                result[match.group(1).lower()] = match.group(2)
    return result


def test_jazzy_pins_the_same_versions_and_every_ros_wheel_for_jazzy():
    kilted, jazzy = pins('requirements.txt'), pins('requirements-jazzy.txt')
    shared = {name: version for name, version in jazzy.items()
              if not name.startswith('ros-jazzy-')}
    differing = {name: (version, kilted.get(name)) for name, version in shared.items()
                 if kilted.get(name) != version}
    assert not differing, f'requirements-jazzy.txt vs requirements.txt: {differing}'
    kilted_ros = {name[len('ros-'):] for name in kilted if name.startswith('ros-')}
    jazzy_ros = {name[len('ros-jazzy-'):] for name in jazzy if name.startswith('ros-jazzy-')}
    assert kilted_ros and kilted_ros == jazzy_ros, (kilted_ros, jazzy_ros)
    for needed in ('numpy', 'torch', 'onnxruntime', 'pytest', 'rosbags'):
        assert needed in shared, needed


def test_ci_runs_the_readme_tests_then_the_ros_tests_on_jazzy():
    with open(os.path.join(ROOT, '.ci', 'run'), encoding='utf-8') as stream:
        commands = [line.strip() for line in stream
                    if line.strip() and not line.startswith('#')]
    assert commands.index('make test') < commands.index('make test-jazzy'), commands
    with open(os.path.join(ROOT, 'Makefile'), encoding='utf-8') as stream:
        makefile = stream.read()
    assert re.search(r'^test-jazzy: \$\(JAZZY_STAMP\)$', makefile, re.M)
    assert re.search(r'^\$\(JAZZY_STAMP\): requirements-jazzy\.txt', makefile, re.M)
