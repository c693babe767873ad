"""The code base follows ament_flake8's rules (99 columns, single quotes, import order)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ruff_clean():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', ROOT],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
