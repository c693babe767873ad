"""What every thing instance shares: its instance id, its ground pose, its depth and size.

:class:`InstanceCounter` hands out the ids, :class:`Pose` places an object on the ground
(local (N, 3) points -> world (N, 3)); :func:`canvas_depth` and :func:`_pixel_height` are
the painter's sort key and the level-of-detail test of vehicles and persons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import List

import numpy as np

from .canvas import Canvas


@dataclass
class InstanceCounter:
    """Hands out instance ids 1, 2, ... and remembers each id's train id."""

    classes: List[int] = field(default_factory=list)

    def new(self, train_id: int) -> int:
        self.classes.append(train_id)
        return len(self.classes)


@dataclass(frozen=True)
class Pose:
    """Ground position (x, z) and heading (0: driving away along +Z) of an object."""

    x: float
    z: float
    heading: float

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Local (N, 3) points (right, up, forward) -> world (N, 3)."""
        local = np.asarray(local, dtype=np.float64).reshape(-1, 3)
        s, c = math.sin(self.heading), math.cos(self.heading)
        world = np.empty_like(local)
        world[:, 0] = self.x + local[:, 0] * c + local[:, 2] * s
        world[:, 1] = local[:, 1]
        world[:, 2] = self.z - local[:, 0] * s + local[:, 2] * c
        return world


def _pixel_height(canvas: Canvas, pose: Pose, height: float) -> float:
    """Approximate on-screen height in pixels of an object standing at ``pose``."""
    depth = max(float(canvas.camera.to_camera(np.array([[pose.x, 0.0, pose.z]]))[0, 2]), 0.5)
    return canvas.camera.focal * height / depth


def canvas_depth(pose: Pose) -> float:
    """Sort key: forward distance of an object's ground position."""
    return pose.z
