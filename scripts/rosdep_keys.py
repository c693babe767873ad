"""Write test/fixtures/rosdep_keys.txt: the names package.xml may depend on, from ros/rosdistro.

A ``package.xml`` dependency resolves with ``rosdep install`` when it is a rosdep key
(``rosdep/base.yaml``, ``rosdep/python.yaml``) or a package released in the target
distribution (``<distro>/distribution.yaml``). This script reads a rosdistro clone (a work
tree or a bare repository) at one commit and writes only the names, so the test of
package.xml (test/test_package_xml.py) runs offline against a small fixture::

    python scripts/rosdep_keys.py ~/src/rosdistro [--rev master] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import List, Sequence, Set

import yaml

ROSDEP_FILES = ('rosdep/base.yaml', 'rosdep/python.yaml')
DISTROS = ('humble', 'jazzy', 'kilted')
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'test', 'fixtures', 'rosdep_keys.txt')


def _git(repo: str, *args: str) -> str:
    result = subprocess.run(['git', '-C', repo, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f'rosdep_keys: git {" ".join(args)} failed in {repo}: '
                         f'{result.stderr.strip()}')
    return result.stdout


def released_packages(distribution: dict) -> Set[str]:
    """Package names released in one ``distribution.yaml``."""
    names: Set[str] = set()
    for repository, entry in (distribution.get('repositories') or {}).items():
        release = (entry or {}).get('release')
        if release:
            names.update(release.get('packages') or [repository])
    return names


def fixture_text(repo: str, rev: str, distros: Sequence[str] = DISTROS) -> str:
    """The fixture: a header naming the commit and date, then one section per source."""
    commit = _git(repo, 'rev-parse', rev).strip()
    date = _git(repo, 'log', '-1', '--format=%cs', commit).strip()
    lines: List[str] = [
        f'# ros/rosdistro {commit} ({date}): rosdep key names, no rules.',
        f'# Sections: the keys of {" and ".join(ROSDEP_FILES)}; the packages released in '
        f'every one of {", ".join(distros)}.',
        '# Made by scripts/rosdep_keys.py; test/test_package_xml.py checks package.xml by it.',
    ]
    for path in ROSDEP_FILES:
        keys = yaml.safe_load(_git(repo, 'show', f'{commit}:{path}')) or {}
        lines += [f'[{path}]', *sorted(keys)]
    common: Set[str] = set()
    for index, distro in enumerate(distros):
        names = released_packages(yaml.safe_load(
            _git(repo, 'show', f'{commit}:{distro}/distribution.yaml')))
        common = names if index == 0 else common & names
    lines += [f'[released in {", ".join(distros)}]', *sorted(common)]
    return '\n'.join(lines) + '\n'


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('rosdistro', help='clone of ros/rosdistro (work tree or bare)')
    parser.add_argument('--rev', default='HEAD', help='commit to read (default HEAD)')
    parser.add_argument('--out', default=DEFAULT_OUT, help='fixture to write')
    args = parser.parse_args(argv)
    text = fixture_text(args.rosdistro, args.rev)
    with open(args.out, 'w', encoding='utf-8') as stream:
        stream.write(text)
    print(f'wrote {args.out}: {text.count(chr(10)) - 3} lines')
    return 0


if __name__ == '__main__':
    sys.exit(main())
