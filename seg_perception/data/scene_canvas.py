"""The drawing surface of the synthetic scenes: image, labels and instance ids painted together.

Every fill writes the colour into the image and, when a label is given, the train id into the
semantic map and the instance id (0 for stuff) into the instance map, with the same polygon, so
the three stay consistent under the painter's algorithm. Colours are hazed by distance
(aerial perspective) when they are drawn, which costs nothing per pixel.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from .scene_camera import Camera, clip_near

_SHIFT = 4
_SCALE = float(1 << _SHIFT)
_LIMIT = 1.0e5  # pixels; keeps fixed-point coordinates far from int32 overflow


def _fixed_point(uv: np.ndarray) -> np.ndarray:
    return np.round(np.clip(uv, -_LIMIT, _LIMIT) * _SCALE).astype(np.int32)


class Canvas:
    """Image, semantic and instance maps of one frame under construction.

    Attributes:
        camera: The frame's camera.
        image: (H, W, 3) float32 linear-ish RGB in 0..255.
        semantic: (H, W) uint8 train ids, 255 where nothing labelled was drawn.
        instance: (H, W) int32 instance ids, 0 on stuff.
        haze_color: (3,) float32 colour distant objects fade to.
        visibility: Metres at which the haze covers 63 % of an object's colour.
    """

    def __init__(self, camera: Camera, haze_color: Sequence[float], visibility: float,
                 void_id: int = 255) -> None:
        self.camera = camera
        shape = (camera.height, camera.width)
        self.image = np.zeros(shape + (3,), dtype=np.float32)
        self.semantic = np.full(shape, void_id, dtype=np.uint8)
        self.instance = np.zeros(shape, dtype=np.int32)
        self.haze_color = np.asarray(haze_color, dtype=np.float32)
        self.visibility = float(visibility)

    def hazed(self, color: Sequence[float], depth: float) -> tuple:
        """The colour an object of ``color`` shows at ``depth`` metres."""
        weight = 1.0 - math.exp(-max(depth, 0.0) / self.visibility)
        return tuple(float(c) * (1.0 - weight) + float(h) * weight
                     for c, h in zip(color, self.haze_color))

    def fill_pixels(self, polygons: Sequence[np.ndarray], color: Sequence[float],
                    label: Optional[int] = None, instance: int = 0, convex: bool = False) -> None:
        """Fill pixel-space polygons, each (N, 2) float (column, row), with one colour.

        ``label`` None paints the image only (details such as windows); otherwise the
        semantic map gets ``label`` and the instance map ``instance``.
        """
        points = [_fixed_point(p) for p in polygons if len(p) >= 3]
        if not points:
            return
        color = tuple(float(c) for c in color)
        if convex:
            for p in points:
                self._fill_one(p, color, label, instance)
            return
        cv2.fillPoly(self.image, points, color, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.fillPoly(self.semantic, points, int(label), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(self.instance, points, int(instance), cv2.LINE_8, _SHIFT)

    def _fill_one(self, points: np.ndarray, color: tuple, label: Optional[int],
                  instance: int) -> None:
        cv2.fillConvexPoly(self.image, points, color, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.fillConvexPoly(self.semantic, points, int(label), cv2.LINE_8, _SHIFT)
            cv2.fillConvexPoly(self.instance, points, int(instance), cv2.LINE_8, _SHIFT)

    def fill_world(self, polygons: Iterable[np.ndarray], color: Sequence[float],
                   label: Optional[int] = None, instance: int = 0, convex: bool = True,
                   haze: bool = True) -> None:
        """Fill planar world polygons, each (N, 3) float metres, clipped at the near plane.

        The colour is hazed by the mean camera depth of all the polygons together.
        """
        projected = []
        depths = []
        for polygon in polygons:
            clipped = clip_near(polygon, self.camera)
            if len(clipped) < 3:
                continue
            uv, depth = self.camera.project(clipped)
            projected.append(uv)
            depths.append(float(depth.mean()))
        if not projected:
            return
        if haze:
            color = self.hazed(color, sum(depths) / len(depths))
        self.fill_pixels(projected, color, label, instance, convex)

    def fill_hull(self, points: np.ndarray, color: Sequence[float], label: Optional[int] = None,
                  instance: int = 0) -> None:
        """Fill the silhouette (convex hull of the projection) of a convex solid's vertices.

        Args:
            points: (N, 3) float world vertices, all in front of the near plane.
        """
        uv, depth = self.camera.project(points)
        if np.any(depth < 0.5):
            return
        hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
        self.fill_pixels([hull], self.hazed(color, float(depth.mean())), label, instance,
                         convex=True)


def circle_points(center: Sequence[float], radius: float, axis_u: Sequence[float],
                  axis_v: Sequence[float], segments: int = 12) -> np.ndarray:
    """(segments, 3) float64 world points of a circle spanned by two unit axes."""
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    u = np.asarray(axis_u, dtype=np.float64)
    v = np.asarray(axis_v, dtype=np.float64)
    return (np.asarray(center, dtype=np.float64)[None, :]
            + radius * (np.cos(angles)[:, None] * u[None, :]
                        + np.sin(angles)[:, None] * v[None, :]))


def ellipse_points(center: Sequence[float], radius_u: float, radius_v: float,
                   axis_u: Sequence[float], axis_v: Sequence[float],
                   segments: int = 12) -> np.ndarray:
    """(segments, 3) float64 world points of an ellipse spanned by two unit axes."""
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    u = np.asarray(axis_u, dtype=np.float64)
    v = np.asarray(axis_v, dtype=np.float64)
    return (np.asarray(center, dtype=np.float64)[None, :]
            + radius_u * np.cos(angles)[:, None] * u[None, :]
            + radius_v * np.sin(angles)[:, None] * v[None, :])
