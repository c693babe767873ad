"""The ``seg-perception`` command.

Each sub-command is a module in ``seg_perception.commands`` exposing::

    HELP: str                                  one line for ``seg-perception --help``
    def add_arguments(parser) -> None          argparse arguments
    def main(args) -> int                      exit status

The module name is the command name with ``-`` for ``_`` (``check_onnx`` -> ``check-onnx``);
a trailing ``_`` is dropped (``import_`` -> ``import``, a Python keyword).
Modules are imported only when their command runs, so ``seg-perception --help`` stays fast
and a command whose optional dependency is missing does not break the others.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import List, Optional

from . import __version__
from . import commands as commands_package


def _command_names() -> List[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands_package.__path__)
                  if not m.name.startswith('_'))


def _read_help(module_name: str) -> str:
    """The HELP line of a command module, read from its source without importing it."""
    import ast
    spec = importlib.util.find_spec(f'{commands_package.__name__}.{module_name}')
    if spec is None or spec.origin is None:
        return ''
    with open(spec.origin, 'r', encoding='utf-8') as stream:
        tree = ast.parse(stream.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'HELP' for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    return ''


def build_parser(selected: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='seg-perception',
        description='Semantic, instance and panoptic segmentation tools for ROS 2 robots.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for module_name in _command_names():
        name = module_name.rstrip('_').replace('_', '-')
        if name == selected:
            module = importlib.import_module(f'{commands_package.__name__}.{module_name}')
            command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_module=module)
        else:
            sub.add_parser(name, help=_read_help(module_name), add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith('-')), None)
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if getattr(args, '_module', None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args._module.main(args) or 0)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
