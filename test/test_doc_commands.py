"""Doc commands a ROS user runs after ``colcon build`` are written as ``ros2 run``.

colcon installs ``seg-perception`` into ``lib/seg_perception/``, which is not on PATH, so
the robot-side commands read ``ros2 run seg_perception seg-perception ...``: every command
of the Jetson and evaluation guides, and the README's robot-side ones. A command is a line
of a code block (not a comment), a table's command cell, or an inline code span with
arguments; prose that names a command (``seg-perception eval`` writes ...) is not.
test/test_colcon.py runs the README's ``doctor`` line from a colcon install tree.
"""

import os
import re

import pytest

from seg_perception.cli import _command_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROS2_RUN = 'ros2 run seg_perception seg-perception'
#: Doc -> the sub-commands that must be written with ros2 run (None: all of them).
ROS_USER_DOCS = {
    'README.md': ('doctor', 'build-engine', 'eval', 'replay', 'bench-node'),
    'docs/jetson.md': None,
    'docs/evaluation.md': None,
}


def commands(text):
    """(line number, command text) of every command in a markdown text."""
    found, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
            continue
        if fenced:
            stripped = line.strip()
            if stripped and not stripped.startswith('#'):
                found.append((number, stripped))
            continue
        cell = re.match(r'\|\s*`([^`]+)`\s*\|', line)
        if cell:
            found.append((number, cell.group(1)))
        for span in re.findall(r'`([^`]+)`', line):
            if len(span.split()) > 2 and not (cell and span == cell.group(1)):
                found.append((number, span))
    return found


@pytest.mark.parametrize('doc', sorted(ROS_USER_DOCS))
def test_robot_side_commands_are_ros2_run(doc):
    with open(os.path.join(ROOT, doc), 'r', encoding='utf-8') as stream:
        text = stream.read()
    wanted = ROS_USER_DOCS[doc] or tuple(name.replace('_', '-') for name in _command_names())
    plain, checked = [], 0
    for number, command in commands(text):
        match = re.match(r'(ros2 run seg_perception )?seg-perception ([a-z][a-z-]*)', command)
        if not match:
            continue
        if match.group(2) in wanted:
            checked += 1
            if not match.group(1):
                plain.append(f'{doc}:{number}: {command}')
    assert checked, f'{doc}: no robot-side command found'
    assert not plain, f'write these as {ROS2_RUN} ...: ' + '; '.join(plain)


def test_command_finder():
    text = ('`seg-perception eval` writes bags\n'
            '| `seg-perception doctor` | what |\n'
            'run `seg-perception build-engine PKG --check` now\n'
            '```\n# seg-perception replay x (a comment)\nseg-perception replay x\n```\n')
    assert commands(text) == [(2, 'seg-perception doctor'),
                              (3, 'seg-perception build-engine PKG --check'),
                              (6, 'seg-perception replay x')]
