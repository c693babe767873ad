"""Completion markers of the Cityscapes-format datasets this project writes.

``seg-perception synth`` (and ``synth-bag --cityscapes``) records each run in
``<root>/synth_runs/<split>_<city>_<seed>_<start>.json`` as incomplete before its first frame
and as complete after its last one. A run that was killed or failed (a full disk) leaves its
marker incomplete, and ``data.cityscapes.CityscapesDataset`` refuses that split until the
same command is run again (frames are rewritten atomically, so it simply finishes) or the
marker is deleted. Folders without markers (the real Cityscapes) are read as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import glob
import json
import os
from typing import List

#: Folder at the dataset root that holds one marker per writing run.
RUNS_DIR = 'synth_runs'


@dataclass(frozen=True)
class WriteRun:
    """One run writing frames ``start .. start + count - 1`` of ``seed`` into a split/city."""

    split: str
    city: str
    seed: int
    start: int
    count: int

    def marker(self, root: str) -> str:
        """Path of this run's marker under the dataset ``root``."""
        return os.path.join(root, RUNS_DIR,
                            f'{self.split}_{self.city}_{self.seed:06d}_{self.start:06d}.json')


def _write_marker(root: str, run: WriteRun, complete: bool) -> None:
    from ..packages.atomic import atomic_write_text
    atomic_write_text(run.marker(root), json.dumps(dict(asdict(run), complete=complete)) + '\n')


def begin_run(root: str, run: WriteRun) -> None:
    """Mark ``run`` incomplete (before its first frame is written)."""
    _write_marker(root, run, complete=False)


def finish_run(root: str, run: WriteRun) -> None:
    """Mark ``run`` complete (after its last frame was written)."""
    _write_marker(root, run, complete=True)


def incomplete_runs(root: str, split: str) -> List[str]:
    """Markers under ``root`` of runs into ``split`` that did not finish (an unreadable
    marker counts for every split)."""
    pending = []
    for path in sorted(glob.glob(os.path.join(root, RUNS_DIR, '*.json'))):
        try:
            with open(path, encoding='utf-8') as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            pending.append(path)
            continue
        if not isinstance(data, dict) or (data.get('split', split) == split
                                          and data.get('complete') is not True):
            pending.append(path)
    return pending
