"""Pinhole camera of the synthetic street scenes: world -> image projection and pixel rays.

World frame (metres): X to the right of the road direction, Y up, Z forward along the road;
the ground is the plane Y = 0. The camera sits at (``lateral``, ``mount_height``, 0), turned by
``yaw`` (positive: looking right) and tilted down by ``pitch``. No roll, so the horizon is one
image row.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Tuple

import numpy as np

#: Points closer than this to the image plane (metres of camera depth) are clipped away.
NEAR_PLANE = 0.5


@dataclass(frozen=True)
class Camera:
    """Camera intrinsics and pose.

    Attributes:
        width: Image width in pixels.
        height: Image height in pixels.
        focal: Focal length in pixels (square pixels).
        cx: Principal point column.
        cy: Principal point row.
        mount_height: Camera height above the ground, metres.
        lateral: Camera X position, metres.
        pitch: Downward tilt, radians.
        yaw: Rightward pan, radians.
    """

    width: int
    height: int
    focal: float
    cx: float
    cy: float
    mount_height: float
    lateral: float
    pitch: float
    yaw: float

    def __post_init__(self) -> None:
        cos_yaw, sin_yaw = math.cos(self.yaw), math.sin(self.yaw)
        cos_pitch, sin_pitch = math.cos(self.pitch), math.sin(self.pitch)
        yaw = np.array([[cos_yaw, 0.0, -sin_yaw], [0.0, 1.0, 0.0], [sin_yaw, 0.0, cos_yaw]])
        pitch = np.array([[1.0, 0.0, 0.0], [0.0, cos_pitch, sin_pitch],
                          [0.0, -sin_pitch, cos_pitch]])
        # Row-vector form: camera = (world - position) @ rotation_t.
        object.__setattr__(self, '_rotation_t', (pitch @ yaw).T.copy())
        object.__setattr__(self, '_position',
                           np.array([self.lateral, self.mount_height, 0.0]))

    @property
    def position(self) -> np.ndarray:
        """(3,) float64 camera centre in world coordinates."""
        return self._position

    @property
    def horizon_row(self) -> float:
        """Image row (float) of the horizon line."""
        return self.cy - self.focal * math.tan(self.pitch)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) float -> camera frame (N, 3) float64 (x right, y up, z ahead)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return (p - self._position) @ self._rotation_t

    def project(self, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Project world points.

        Args:
            points: (N, 3) float world coordinates, all in front of the camera.

        Returns:
            ``(uv, depth)``: (N, 2) float64 pixel coordinates (column, row) and (N,) float64
            camera depth in metres.
        """
        cam = self.to_camera(points)
        depth = np.maximum(cam[:, 2], 1e-6)
        uv = np.empty((len(cam), 2))
        uv[:, 0] = self.cx + self.focal * cam[:, 0] / depth
        uv[:, 1] = self.cy - self.focal * cam[:, 1] / depth
        return uv, cam[:, 2]

    def pixels_per_metre(self, depth: float) -> float:
        return self.focal / max(depth, 1e-6)

    def rays(self, col0: int, col1: int, row0: int, row1: int
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World-frame ray directions of the pixels in ``[row0:row1, col0:col1]``.

        Returns:
            ``(dx, dy, dz)``: three (row1-row0, col1-col0) float32 arrays; the ray of a pixel is
            ``origin + t * (dx, dy, dz)`` with origin the camera centre and ``t`` >= 0.
        """
        a = ((np.arange(col0, col1, dtype=np.float32) + 0.5 - self.cx) / self.focal)[None, :]
        b = (-(np.arange(row0, row1, dtype=np.float32) + 0.5 - self.cy) / self.focal)[:, None]
        cos_pitch, sin_pitch = math.cos(self.pitch), math.sin(self.pitch)
        cos_yaw, sin_yaw = math.cos(self.yaw), math.sin(self.yaw)
        dy = b * cos_pitch - sin_pitch
        dz1 = b * sin_pitch + cos_pitch
        dx = cos_yaw * a + sin_yaw * dz1
        dz = -sin_yaw * a + cos_yaw * dz1
        return dx.astype(np.float32), np.broadcast_to(dy, dx.shape), dz.astype(np.float32)

    def ground_coordinates(self, row0: int) -> Tuple[np.ndarray, np.ndarray]:
        """Ground-plane coordinates of the pixels in rows ``row0:height`` (all below the horizon).

        Returns:
            ``(x, z)``: two (height-row0, width) float32 arrays, world X and Z in metres.
        """
        dx, dy, dz = self.rays(0, self.width, row0, self.height)
        t = self.mount_height / np.maximum(-dy, 1e-6)
        return (self.lateral + t * dx).astype(np.float32), (t * dz).astype(np.float32)


def clip_near(points: np.ndarray, camera: Camera, near: float = NEAR_PLANE) -> np.ndarray:
    """Clip a planar polygon (N, 3) world points to the half space of camera depth >= ``near``.

    Returns the clipped polygon (M, 3) float64, possibly empty (M = 0).
    """
    polygon = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    depth = camera.to_camera(polygon)[:, 2]
    if np.all(depth >= near):
        return polygon
    if np.all(depth < near):
        return polygon[:0]
    clipped = []
    count = len(polygon)
    for i in range(count):
        j = (i + 1) % count
        inside_i, inside_j = depth[i] >= near, depth[j] >= near
        if inside_i:
            clipped.append(polygon[i])
        if inside_i != inside_j:
            weight = (near - depth[i]) / (depth[j] - depth[i])
            clipped.append(polygon[i] + weight * (polygon[j] - polygon[i]))
    return np.asarray(clipped, dtype=np.float64)
