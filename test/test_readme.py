"""The README stays true: its parameter table is the node's, its commands exist."""

import os
import re

from seg_perception.cli import _command_names
from seg_perception.pipeline.config import markdown_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_readme():
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as stream:
        return stream.read()


def test_parameter_table_matches_the_node():
    assert markdown_table().strip() in read_readme()


def test_every_seg_perception_command_in_the_readme_exists():
    # As cli.build_parser names them: module import_ is the command import.
    commands = {name.rstrip('_').replace('_', '-') for name in _command_names()}
    used = set(re.findall(r'seg-perception ([a-z][a-z-]*)', read_readme()))
    assert used and used <= commands, used - commands


def test_quick_start_is_two_make_targets_that_exist():
    readme = read_readme()
    assert 'make demo' in readme and 'make test' in readme
    with open(os.path.join(ROOT, 'Makefile'), encoding='utf-8') as stream:
        makefile = stream.read()
    assert re.search(r'^demo:', makefile, re.M) and re.search(r'^test:', makefile, re.M)
    with open(os.path.join(ROOT, '.ci', 'run'), encoding='utf-8') as stream:
        assert 'make test' in stream.read()
