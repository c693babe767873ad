"""Check a bag's metadata.yaml against what one distribution's rosbag2 decodes.

The rules are in test/fixtures/rosbag2_metadata_schema.yaml, transcribed per distribution
from rosbag2's decoders (see its header). ``metadata_errors`` returns every field that
distribution's ``ros2 bag info`` / ``play`` would fail on, or misread, as one line each.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

import yaml

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'fixtures', 'rosbag2_metadata_schema.yaml')
_TIME_KEYS = ('deadline', 'lifespan', 'liveliness_lease_duration')
_POLICIES = ('history', 'reliability', 'durability', 'liveliness')
_HISTORY_INTS = range(0, 4)  # RMW_QOS_POLICY_HISTORY_SYSTEM_DEFAULT .. _UNKNOWN


def load_schema() -> Dict[str, Any]:
    with open(SCHEMA_FILE, 'r', encoding='utf-8') as stream:
        return yaml.safe_load(stream)


def _uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    def __init__(self, rules: Dict[str, Any], version: int) -> None:
        self.rules, self.version, self.errors = rules, version, []

    def fields(self, node: Any, rules: List[list], where: str) -> None:
        if not isinstance(node, dict):
            self.errors.append(f'{where}: not a map')
            return
        for rule in rules:
            name, kind, first = rule[:3]
            last = rule[3] if len(rule) > 3 else None
            if self.version < first or (last is not None and self.version > last):
                continue
            if name not in node:
                self.errors.append(f'{where}.{name}: missing (version {self.version} has it)')
            else:
                self.value(node[name], kind, f'{where}.{name}')

    def value(self, value: Any, kind: str, where: str) -> None:
        simple = {'str': lambda v: isinstance(v, str), 'int': _int, 'uint': _uint,
                  'bool': lambda v: isinstance(v, bool)}
        if kind in simple:
            if not simple[kind](value):
                self.errors.append(f'{where}: {value!r} is not {kind}')
        elif kind == 'str_list':
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.errors.append(f'{where}: not a list of strings')
        elif kind == 'map_str':
            if value is not None and not (isinstance(value, dict) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
                self.errors.append(f'{where}: not a map of strings')
        elif kind == 'duration':
            self.fields(value, [['nanoseconds', 'uint', 1]], where)
        elif kind == 'time':
            self.fields(value, [['nanoseconds_since_epoch', 'uint', 1]], where)
        elif kind == 'files':
            self.sequence(value, where, lambda item, at: self.fields(item, [
                ['path', 'str', 1], ['starting_time', 'time', 1], ['duration', 'duration', 1],
                ['message_count', 'uint', 1]], at))
        elif kind == 'topics':
            self.sequence(value, where, self.topic)
        elif kind == 'qos_string':
            if not isinstance(value, str):
                self.errors.append(f'{where}: {type(value).__name__}, not one YAML string')
            elif value.strip():
                self.sequence(yaml.safe_load(value), where, self.qos)
        elif kind == 'qos_list':
            self.sequence(value, where, self.qos)
        else:
            raise ValueError(f'schema type {kind!r} unknown')

    def sequence(self, value: Any, where: str, check) -> None:
        if not isinstance(value, list):
            self.errors.append(f'{where}: not a list')
            return
        for index, item in enumerate(value):
            check(item, f'{where}[{index}]')

    def topic(self, item: Any, where: str) -> None:
        self.fields(item, [['message_count', 'uint', 1]], where)
        if isinstance(item, dict):
            self.fields(item.get('topic_metadata'), self.rules['topic'], f'{where}.topic_metadata')

    def qos(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            self.errors.append(f'{where}: not a QoS map')
            return
        names = self.rules['qos_policies']
        as_ints = names == 'int' or (_int(item.get('history'))
                                     and item.get('history') in _HISTORY_INTS)
        for policy in _POLICIES:
            value = item.get(policy)
            if as_ints and not _int(value):
                self.errors.append(f'{where}.{policy}: {value!r} is not an integer policy')
            elif not as_ints and value not in names[policy]:
                self.errors.append(f'{where}.{policy}: {value!r} is not one of '
                                   f'{names[policy]}')
        if as_ints or item.get('history') == 'keep_last':
            self.value(item.get('depth'), 'int', f'{where}.depth')
        for key in _TIME_KEYS:
            self.fields(item.get(key), [['sec', 'uint', 1], ['nsec', 'uint', 1]],
                        f'{where}.{key}')
        self.value(item.get('avoid_ros_namespace_conventions'), 'bool',
                   f'{where}.avoid_ros_namespace_conventions')


def metadata_errors(document: Any, distro: str) -> List[str]:
    """Every problem ``distro``'s rosbag2 would have with a parsed metadata.yaml."""
    rules = load_schema()[distro]
    if not isinstance(document, dict) or 'rosbag2_bagfile_information' not in document:
        return ['no rosbag2_bagfile_information map']
    information = document['rosbag2_bagfile_information']
    version = information.get('version') if isinstance(information, dict) else None
    if not _int(version) or not 1 <= version <= rules['version']:
        return [f'version {version!r}: {distro} reads versions 1..{rules["version"]}']
    checker = _Checker(rules, version)
    checker.fields(information, rules['bag'], 'rosbag2_bagfile_information')
    return checker.errors
