"""tools/demo_setup.use_large_data_profile: what the node does to its own Fast DDS participant
before ROS starts, and what it leaves alone."""

import os

import pytest

from seg_perception.tools.demo_setup import (
    FAST_DDS_TRANSPORT_VARIABLES,
    large_data_profile,
    use_large_data_profile,
)


@pytest.fixture
def clean_env(monkeypatch):
    for name in FAST_DDS_TRANSPORT_VARIABLES + ('RMW_IMPLEMENTATION', 'ROS_DISTRO'):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize('rmw', [None, 'rmw_fastrtps_cpp', 'rmw_fastrtps_dynamic_cpp'])
def test_fast_dds_gets_the_profile_when_nothing_is_chosen(clean_env, rmw):
    if rmw:
        clean_env.setenv('RMW_IMPLEMENTATION', rmw)
    assert use_large_data_profile().startswith('Fast DDS profile ')
    assert os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] == large_data_profile()
    assert 'FASTRTPS_DEFAULT_PROFILES_FILE' not in os.environ  # deprecated after Jazzy


def test_humble_also_gets_the_fast_dds_2_variable(clean_env):
    clean_env.setenv('ROS_DISTRO', 'humble')
    use_large_data_profile()
    assert os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] == large_data_profile()


@pytest.mark.parametrize('name, value', [('FASTDDS_BUILTIN_TRANSPORTS', 'DEFAULT'),
                                         ('FASTDDS_DEFAULT_PROFILES_FILE', '/etc/mine.xml'),
                                         ('FASTRTPS_DEFAULT_PROFILES_FILE', '/etc/mine.xml'),
                                         ('RMW_IMPLEMENTATION', 'rmw_cyclonedds_cpp')])
def test_a_transport_the_user_chose_stands(clean_env, name, value):
    clean_env.setenv(name, value)
    message = use_large_data_profile()
    assert value in message
    assert os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', '') in ('', value)
