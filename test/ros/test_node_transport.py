"""Best-effort full-size images between processes with config's Fast DDS profile.

On the default Fast DDS transports a best-effort 1024x512 rgb8 image (1.5 MB) is often
lost: Kilted's delivered next to none of 50, Jazzy's 9-15 of 20. How many is the DDS
version's business, so no test asserts a loss rate; config/fastdds_large_data.xml (what the
README and the launch file's ``large_data:=true`` use) must make them arrive.
"""

import os
import subprocess
import sys

import pytest
from ros_helpers import fresh_domain_id, node_env

pytestmark = pytest.mark.ros

pytest.importorskip('rclpy')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILE = os.path.join(REPO_ROOT, 'config', 'fastdds_large_data.xml')
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ros_helpers.py')
fast_dds_only = pytest.mark.skipif(
    os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp') != 'rmw_fastrtps_cpp',
    reason='the profile is for Fast DDS')


def probe(profile, seconds, wanted=3):
    """Received count of full-size best-effort images from a publisher process (10 Hz); the
    subscriber stops early once ``wanted`` arrived."""
    extra = {'FASTDDS_DEFAULT_PROFILES_FILE': profile} if profile else {}
    env = node_env(fresh_domain_id(), extra)
    env.pop('FASTRTPS_DEFAULT_PROFILES_FILE', None)
    if not profile:
        env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    subscriber = subprocess.Popen([sys.executable, HELPER, 'sub', str(seconds), str(wanted)],
                                  env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    publisher = subprocess.Popen([sys.executable, HELPER, 'pub', str(seconds + 2), '0'],
                                 env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        output, _ = subscriber.communicate(timeout=seconds + 60)
    finally:
        publisher.terminate()
        publisher.wait(30)
    lines = [line for line in output.splitlines() if line.startswith('received ')]
    assert lines, output
    return int(lines[-1].split()[1])


@fast_dds_only
def test_profile_delivers_best_effort_full_size_images():
    assert probe(PROFILE, 20.0) >= 3

