"""package.xml: every dependency is a key ``rosdep install`` resolves on Humble, Jazzy and Kilted.

The keys are checked against test/fixtures/rosdep_keys.txt: the key names of ros/rosdistro's
``rosdep/base.yaml`` and ``rosdep/python.yaml`` and the packages released in all three
distributions, at the commit its first line names (made by scripts/rosdep_keys.py). The
launch file's and the code's ROS imports must be exec_depends, and no ROS package unused.
"""

import os
import re
import xml.etree.ElementTree as ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_XML = os.path.join(ROOT, 'package.xml')
KEYS_FILE = os.path.join(ROOT, 'test', 'fixtures', 'rosdep_keys.txt')
DEPEND_TAGS = ('depend', 'build_depend', 'build_export_depend', 'buildtool_depend',
               'buildtool_export_depend', 'exec_depend', 'test_depend', 'doc_depend')
#: ROS packages the code or the launch file import, with where.
IMPORTED = {
    'rclpy': 'seg_perception/ros/',
    'sensor_msgs': 'seg_perception/ros/',
    'std_msgs': 'seg_perception/ros/',
    'diagnostic_msgs': 'seg_perception/ros/diagnostics.py',
    'rcl_interfaces': 'seg_perception/ros/',
    'ament_index_python': 'launch/seg_perception.launch.py',
    'launch': 'launch/seg_perception.launch.py',
    'launch_ros': 'launch/seg_perception.launch.py',
}
#: Declared without a direct import: the stamps of every header the node publishes.
INDIRECT = {'builtin_interfaces'}


def rosdep_keys():
    """(header line, set of keys) of the vendored key list."""
    with open(KEYS_FILE, 'r', encoding='utf-8') as stream:
        lines = stream.read().splitlines()
    keys = {line for line in lines if line and not line.startswith(('#', '['))}
    return lines[0], keys


def dependencies():
    """(tag, key) of every dependency of package.xml."""
    root = ElementTree.parse(PACKAGE_XML).getroot()
    return [(element.tag, element.text.strip()) for tag in DEPEND_TAGS
            for element in root.iter(tag)]


def test_key_list_names_its_rosdistro_commit():
    header, keys = rosdep_keys()
    assert re.match(r'# ros/rosdistro [0-9a-f]{40} \(\d{4}-\d\d-\d\d\)', header), header
    assert {'python3-numpy', 'rclpy', 'launch_ros'} <= keys and len(keys) > 1000


def test_every_dependency_is_a_rosdep_key():
    _, keys = rosdep_keys()
    deps = dependencies()
    assert deps
    unknown = [f'<{tag}>{key}</{tag}>' for tag, key in deps if key not in keys]
    assert not unknown, f'not rosdep keys (rosdep install fails): {", ".join(unknown)}'


def test_package_xml_is_valid_format_3_without_duplicates():
    root = ElementTree.parse(PACKAGE_XML).getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'seg_perception'
    assert root.findtext('export/build_type') == 'ament_python'
    deps = dependencies()
    assert len(deps) == len(set(deps)), deps


def test_imported_ros_packages_are_exec_depends_and_nothing_unused():
    exec_deps = {key for tag, key in dependencies() if tag in ('depend', 'exec_depend')}
    missing = sorted(set(IMPORTED) - exec_deps)
    assert not missing, f'imported but not exec_depend: {missing}'
    for package, where in IMPORTED.items():
        path = os.path.join(ROOT, where)
        files = [os.path.join(d, f) for d, _, names in os.walk(path) for f in names
                 if f.endswith('.py')] if os.path.isdir(path) else [path]
        text = ''.join(open(f, encoding='utf-8').read() for f in files)
        assert re.search(rf'^\s*(from|import) {package}\b', text, re.M), (package, where)
    unused = sorted(key for key in exec_deps - set(IMPORTED) - INDIRECT
                    if not key.startswith('python3-'))
    assert not unused, f'exec_depend on ROS packages nothing imports: {unused}'
    test_deps = {key for tag, key in dependencies() if tag == 'test_depend'}
    assert 'ament_flake8' not in test_deps, 'ruff checks the style (test/test_lint.py)'
