"""The launch file, params files, RViz config and Fast DDS profile, checked without launch_ros.

``launch`` / ``launch_ros`` cannot be installed here, so the launch file is compiled,
imported, and its ``generate_launch_description`` / setup function are run against small
stand-ins of the launch classes that record what they were given. Every parameter it or a
params file sets must be one the node declares, every file it names must exist, and the
node must start with each shipped params file.
"""

import ast
import glob
import importlib.util
import os
import signal
import sys
import types
import xml.etree.ElementTree as ElementTree

import pytest
import yaml

from seg_perception.pipeline.config import (
    ConfigError,
    NodeConfig,
    OUTPUT_NAMES,
    PARAMETERS_BY_NAME,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCH_FILE = os.path.join(ROOT, 'launch', 'seg_perception.launch.py')
CONFIG_DIR = os.path.join(ROOT, 'config')


def load_launch_module():
    spec = importlib.util.spec_from_file_location('seg_perception_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def params_files():
    files = sorted(glob.glob(os.path.join(CONFIG_DIR, '*.yaml')))
    assert files, 'config/ holds no params file'
    return files


def node_parameters(path):
    """``ros__parameters`` of the node in a ROS params file."""
    with open(path, 'r', encoding='utf-8') as stream:
        data = yaml.safe_load(stream)
    sections = [value['ros__parameters'] for key, value in data.items()
                if key in ('/**', 'seg_perception', '/seg_perception')]
    assert len(sections) == 1, f'{path}: expected one /** or seg_perception section'
    return sections[0]


def test_launch_file_compiles_and_imports_without_launch():
    with open(LAUNCH_FILE, 'r', encoding='utf-8') as stream:
        compile(stream.read(), LAUNCH_FILE, 'exec')
    module = load_launch_module()
    assert callable(module.generate_launch_description)


def test_launch_names_existing_files_and_declared_parameters():
    module = load_launch_module()
    for name in (module.DEFAULT_PARAMS_FILE, module.RVIZ_CONFIG, module.FASTDDS_PROFILE):
        assert os.path.isfile(module.config_path(ROOT, name)), name
    for argument, (parameter, _) in module.PARAMETER_ARGUMENTS.items():
        assert parameter in PARAMETERS_BY_NAME, parameter
        assert argument in module.ARGUMENTS, argument
    overrides = module.parameter_overrides({'cameras': 'front, rear', 'backend': 'onnxruntime',
                                            'model': ''})
    assert overrides == {'cameras': ['front', 'rear'], 'backend': 'onnxruntime'}
    NodeConfig.from_values(overrides)
    assert module.parse_remappings('a/image_raw:=/cam/image; b:=c ') == [
        ('a/image_raw', '/cam/image'), ('b', 'c')]
    with pytest.raises(ValueError, match="'oops' is not of the form from:=to"):
        module.parse_remappings('oops')


def test_every_string_literal_naming_a_config_file_exists():
    with open(LAUNCH_FILE, 'r', encoding='utf-8') as stream:
        tree = ast.parse(stream.read())
    named = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
             and isinstance(node.value, str)
             and node.value.endswith(('.yaml', '.rviz', '.xml'))}
    assert named
    for name in named:
        assert os.path.isfile(os.path.join(CONFIG_DIR, name)), name


class _Recorder:
    """Stand-in for a launch class: records its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stub_modules(monkeypatch):
    made = {}
    for name in ('launch', 'launch.actions', 'launch_ros', 'launch_ros.actions',
                 'ament_index_python', 'ament_index_python.packages'):
        made[name] = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, made[name])
    for cls in ('LaunchDescription',):
        setattr(made['launch'], cls, type(cls, (_Recorder,), {}))
    for cls in ('DeclareLaunchArgument', 'OpaqueFunction', 'SetEnvironmentVariable'):
        setattr(made['launch.actions'], cls, type(cls, (_Recorder,), {}))
    made['launch_ros.actions'].Node = type('Node', (_Recorder,), {})
    made['launch_ros.actions'].LifecycleNode = type('LifecycleNode', (_Recorder,), {})
    made['ament_index_python.packages'].get_package_share_directory = lambda package: ROOT
    return made


def test_launch_description_with_stand_ins(monkeypatch):
    _stub_modules(monkeypatch)
    module = load_launch_module()
    description = module.generate_launch_description()
    actions = description.args[0]
    declared = [a.args[0] for a in actions if type(a).__name__ == 'DeclareLaunchArgument']
    assert declared == list(module.ARGUMENTS)
    setup = actions[-1].kwargs['function']
    context = types.SimpleNamespace(launch_configurations={
        'cameras': 'front,rear', 'use_rviz': 'true', 'large_data': 'true',
        'remappings': 'front/image_raw:=/camera/front/image'})
    created = setup(context)
    rviz_file = created[3].kwargs['arguments'][1]
    kinds = [type(a).__name__ for a in created]
    assert kinds == ['SetEnvironmentVariable', 'SetEnvironmentVariable', 'Node', 'Node']
    for env in created[:2]:
        assert os.path.isfile(env.args[1])
    node = created[2].kwargs
    assert node['executable'] == 'seg_perception_node' and node['name'] == 'seg_perception'
    params_file, overrides = node['parameters']
    assert os.path.isfile(params_file)
    assert overrides == {'cameras': ['front', 'rear']}
    assert node['remappings'] == [('front/image_raw', '/camera/front/image')]
    with open(rviz_file, 'r', encoding='utf-8') as stream:
        rviz = yaml.safe_load(stream)['Visualization Manager']
    assert [d['Topic']['Value'] for d in rviz['Displays']] == [
        f'/{camera}/segmentation/{output}' for camera in ('front', 'rear')
        for output in ('overlay', 'semantic_color', 'panoptic_color')]
    assert rviz['Global Options']['Fixed Frame'] == 'front_optical_frame'


def test_lifecycle_switch_starts_the_managed_node(monkeypatch):
    _stub_modules(monkeypatch)
    module = load_launch_module()
    setup = module.generate_launch_description().args[0][-1].kwargs['function']
    created = setup(types.SimpleNamespace(launch_configurations={'lifecycle': 'true'}))
    assert [type(a).__name__ for a in created] == ['LifecycleNode']
    node = created[0].kwargs
    assert node['executable'] == 'seg_perception_lifecycle_node'
    assert node['name'] == 'seg_perception' and node['namespace'] == ''
    assert os.path.isfile(node['parameters'][0])


def test_use_rviz_shows_the_launched_cameras_in_their_frame(monkeypatch):
    """Default params file (camera ``camera``), a namespace, an output remapped, a frame."""
    _stub_modules(monkeypatch)
    module = load_launch_module()
    setup = module.generate_launch_description().args[0][-1].kwargs['function']
    configurations = {'use_rviz': 'true', 'namespace': 'robot',
                      'remappings': 'camera/segmentation/overlay:=/viz/overlay'}
    created = setup(types.SimpleNamespace(launch_configurations=configurations))
    with open(created[-1].kwargs['arguments'][1], 'r', encoding='utf-8') as stream:
        rviz = yaml.safe_load(stream)['Visualization Manager']
    assert [d['Topic']['Value'] for d in rviz['Displays']] == [
        '/viz/overlay', '/robot/camera/segmentation/semantic_color',
        '/robot/camera/segmentation/panoptic_color']
    assert rviz['Global Options']['Fixed Frame'] == 'camera_optical_frame'
    configurations.update(rviz_fixed_frame='cam_link', cameras='/a')
    created = setup(types.SimpleNamespace(launch_configurations=configurations))
    with open(created[-1].kwargs['arguments'][1], 'r', encoding='utf-8') as stream:
        rviz = yaml.safe_load(stream)['Visualization Manager']
    assert rviz['Displays'][0]['Topic']['Value'] == '/a/segmentation/overlay'
    assert rviz['Global Options']['Fixed Frame'] == 'cam_link'
    assert 'rviz_fixed_frame' in module.ARGUMENTS


@pytest.mark.parametrize('path', params_files(), ids=os.path.basename)
def test_params_files_set_only_declared_parameters_with_valid_values(path):
    values = node_parameters(path)
    undeclared = sorted(set(values) - set(PARAMETERS_BY_NAME))
    assert not undeclared, f'{path} sets undeclared parameters {undeclared}'
    try:
        NodeConfig.from_values({k: tuple(v) if isinstance(v, list) else v
                                for k, v in values.items()})
    except ConfigError as error:
        pytest.fail(f'{path}: {error}')


def test_demo_rviz_config_shows_outputs_the_node_publishes():
    with open(os.path.join(CONFIG_DIR, 'seg_perception.rviz'), 'r', encoding='utf-8') as stream:
        rviz = yaml.safe_load(stream)
    topics = [display['Topic']['Value'] for display in rviz['Visualization Manager']['Displays']]
    assert len(topics) == 6
    for topic in topics:
        _, camera, segmentation, output = topic.split('/')
        assert segmentation == 'segmentation' and output in OUTPUT_NAMES, topic


def test_fastdds_profile_is_a_default_participant_profile():
    root = ElementTree.parse(os.path.join(CONFIG_DIR, 'fastdds_large_data.xml')).getroot()
    ns = {'dds': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
    participant = root.find('dds:profiles/dds:participant', ns)
    assert participant.get('is_default_profile') == 'true'
    transports = {t.findtext('dds:transport_id', namespaces=ns): t
                  for t in root.findall('dds:profiles/dds:transport_descriptors/'
                                        'dds:transport_descriptor', ns)}
    used = [t.text for t in participant.findall('dds:rtps/dds:userTransports/dds:transport_id',
                                                ns)]
    assert used and set(used) <= set(transports)
    shm = [t for t in transports.values() if t.findtext('dds:type', namespaces=ns) == 'SHM']
    assert int(shm[0].findtext('dds:segment_size', namespaces=ns)) >= 16 * 2 ** 20


@pytest.mark.ros
def test_node_starts_with_every_shipped_params_file(tmp_path):
    pytest.importorskip('rclpy')
    torch = pytest.importorskip('torch')
    import subprocess
    import time

    from ros_helpers import fresh_domain_id, node_env
    from seg_test_models import export_lively_package
    torch.set_num_threads(1)
    package = export_lively_package('enet', 'semantic', 64, 128, str(tmp_path / 'pkg'))
    processes = []
    for path in params_files():
        command = [sys.executable, '-m', 'seg_perception.ros.node', '--ros-args',
                   '--params-file', path, '-p', f'model:={package}']
        log = open(tmp_path / (os.path.basename(path) + '.log'), 'w+', encoding='utf-8')
        processes.append((path, log, subprocess.Popen(
            command, env=node_env(fresh_domain_id()), stdout=log, stderr=subprocess.STDOUT,
            cwd=ROOT)))
    deadline = time.monotonic() + 120
    for path, log, process in processes:
        while time.monotonic() < deadline and process.poll() is None:
            log.seek(0)
            if 'inputs: ' in log.read():
                break
            time.sleep(0.2)
        log.seek(0)
        output = log.read()
        assert process.poll() is None and 'inputs: /camera/image_raw' in output, (path, output)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, output
        log.close()
