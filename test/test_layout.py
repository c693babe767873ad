"""The package's layout rules: who may import what, one outputs table, files of a readable size.

- ``seg_perception.ros`` is the only sub-package that imports rclpy: every other module is
  imported here with rclpy made unimportable, and no source line outside ``ros/`` names it.
- Nothing but ``cli.py`` imports ``seg_perception.commands`` (sub-commands hold no library
  code); nothing outside ``training/`` and ``commands/`` imports ``training``.
- The node's outputs are listed once, in ``pipeline/outputs.py``.
- Every sub-package says in its ``__init__`` docstring what it holds; no module is longer than
  ``MAX_LINES`` except data tables.
"""

import ast
import os
import subprocess
import sys
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from seg_perception.pipeline.outputs import OUTPUT_NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'seg_perception')
MAX_LINES = 450
#: Modules that are mostly data, allowed past MAX_LINES.
DATA_MODULES: Set[str] = set()
OUTPUTS_TABLE = 'seg_perception.pipeline.outputs'


def _modules() -> Iterator[Tuple[str, str]]:
    """(dotted module name, file path) of every module of the package."""
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '__')))
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts = parts[:-1]
                yield '.'.join(parts), path


def _imported_modules(module: str, path: str) -> Set[str]:
    """Absolute names of everything ``path`` imports, at any depth (lazy imports too)."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                source = '.'.join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ''
            names.add(source)
            names.update(f'{source}.{alias.name}' for alias in node.names)
    return names


MODULES: Dict[str, str] = dict(_modules())


def _inside(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + '.') for p in packages)


def test_only_ros_imports_rclpy_in_its_source():
    offenders = [module for module, path in MODULES.items()
                 if not _inside(module, 'seg_perception.ros')
                 and any(_inside(name, 'rclpy') for name in _imported_modules(module, path))]
    assert not offenders, f'import rclpy outside seg_perception/ros/: {offenders}'


def test_every_module_outside_ros_imports_without_rclpy():
    core = sorted(m for m in MODULES if not _inside(m, 'seg_perception.ros'))
    script = (
        'import importlib, sys\n'
        'class NoRclpy:\n'
        '    def find_spec(self, name, path=None, target=None):\n'
        "        if name == 'rclpy' or name.startswith('rclpy.'):\n"
        "            raise ImportError('rclpy is not importable in this test')\n"
        'sys.meta_path.insert(0, NoRclpy())\n'
        'for name in sys.argv[1:]:\n'
        '    importlib.import_module(name)\n'
        "assert not any(m == 'rclpy' or m.startswith('rclpy.') for m in sys.modules)\n")
    run = subprocess.run([sys.executable, '-c', script, *core], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]


def test_ros_modules_are_the_rclpy_side():
    ros = [m for m in MODULES if _inside(m, 'seg_perception.ros') and m != 'seg_perception.ros']
    assert ros, 'seg_perception/ros/ is empty'


def test_only_the_cli_imports_commands():
    offenders = [module for module, path in MODULES.items()
                 if not _inside(module, 'seg_perception.commands', 'seg_perception.cli')
                 and any(_inside(name, 'seg_perception.commands')
                         for name in _imported_modules(module, path))]
    assert not offenders, f'modules importing seg_perception.commands: {offenders}'


def test_training_is_imported_only_by_commands():
    offenders = [module for module, path in MODULES.items()
                 if not _inside(module, 'seg_perception.training', 'seg_perception.commands')
                 and any(_inside(name, 'seg_perception.training')
                         for name in _imported_modules(module, path))]
    assert not offenders, f'modules importing seg_perception.training: {offenders}'


def _string_collections(path: str) -> Iterator[Tuple[int, List[str]]]:
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [key for key in node.keys if key is not None]
        else:
            continue
        strings = [item.value for item in items
                   if isinstance(item, ast.Constant) and isinstance(item.value, str)]
        yield node.lineno, strings


def test_outputs_are_listed_only_in_the_outputs_table():
    """A collection naming three outputs, one of them not a graph tensor, is a copied list.

    (The graph's tensors ``semantic``, ``confidence``, ``instance``, ``panoptic`` share names
    with outputs; lists of those belong to the graph contract in ``manifest.py``.)
    """
    from seg_perception.manifest import PANOPTIC_OUTPUTS
    outputs = set(OUTPUT_NAMES)
    node_only = outputs - set(PANOPTIC_OUTPUTS)
    found = []
    for module, path in MODULES.items():
        if module == OUTPUTS_TABLE:
            continue
        for line, strings in _string_collections(path):
            named = outputs.intersection(strings)
            if len(named) >= 3 and named & node_only:
                found.append(f'{os.path.relpath(path, ROOT)}:{line} {sorted(named)}')
    assert not found, 'a list of node outputs outside pipeline/outputs.py: ' + '; '.join(found)


def test_the_table_drives_switches_publishers_and_the_output_bag():
    from seg_perception.evaluation.output_bag import OUTPUT_CHOICES
    from seg_perception.pipeline.config import NodeConfig, PARAMETERS_BY_NAME
    from seg_perception.pipeline.outputs import IMAGE_OUTPUT_NAMES, OUTPUTS
    for spec in OUTPUTS:
        switch = PARAMETERS_BY_NAME[f'publish_{spec.name}']
        assert switch.default is spec.default and spec.content in switch.description
    defaults = NodeConfig.from_values({})
    assert defaults.enabled_outputs == tuple(s.name for s in OUTPUTS if s.default)
    assert set(IMAGE_OUTPUT_NAMES) <= set(OUTPUT_CHOICES)
    assert 'detections' not in OUTPUT_CHOICES  # needs vision_msgs, which bags need not have


@pytest.mark.parametrize('module', sorted(m for m, p in MODULES.items()
                                          if p.endswith('__init__.py')))
def test_every_sub_package_says_what_it_holds(module):
    tree = ast.parse(open(MODULES[module], encoding='utf-8').read())
    assert ast.get_docstring(tree), f'{module}/__init__.py has no docstring'


def test_no_module_is_too_long():
    too_long = []
    for module, path in MODULES.items():
        lines = sum(1 for _ in open(path, encoding='utf-8'))
        if lines > MAX_LINES and module not in DATA_MODULES:
            too_long.append(f'{os.path.relpath(path, ROOT)} ({lines} lines)')
    assert not too_long, f'split along its seams: {too_long}'


def test_top_level_holds_only_the_shared_words():
    top = sorted(f for f in os.listdir(PACKAGE) if f.endswith('.py'))
    assert top == ['__init__.py', 'cli.py', 'label_tables.py', 'labels.py', 'manifest.py',
                   'segmenter.py']
