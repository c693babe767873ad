"""The drawing surface of the synthetic scenes: image, labels and instance ids painted together.

Every fill writes the colour into the image and, when a label is given, the train id into the
semantic map and the instance id (0 for stuff) into the instance map, with the same polygon, so
the three stay consistent under the painter's algorithm. Colours are hazed by distance
(aerial perspective) when they are drawn, which costs nothing per pixel.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Tuple

import cv2
import numpy as np

from .scene_camera import Camera, clip_near, NEAR_PLANE

_SHIFT = 4
_SCALE = float(1 << _SHIFT)
_LIMIT = 1.0e5  # pixels; keeps fixed-point coordinates far from int32 overflow


def _fixed_point(uv: np.ndarray) -> np.ndarray:
    scaled = uv * _SCALE
    if np.abs(scaled).max() > _LIMIT * _SCALE:
        np.clip(scaled, -_LIMIT * _SCALE, _LIMIT * _SCALE, out=scaled)
    return scaled.astype(np.int32)


class Canvas:
    """Image, semantic and instance maps of one frame under construction.

    Attributes:
        camera: The frame's camera.
        image: (H, W, 3) float32 linear-ish RGB in 0..255.
        semantic: (H, W) uint8 train ids, 255 where nothing labelled was drawn.
        instance: (H, W) uint16 instance ids as drawn, 0 on stuff (half the bytes of int32
            for every fill; the finished frame's ids are compacted into int32).
        shade: None, or (H, W) float32 light factor applied when the image is finished (cast
            shadows on the ground); later labelled fills reset it to 1 so objects drawn over
            a shadow are not darkened.
        things_drawn: Whether any instance id was drawn yet; until then stuff fills need not
            clear the instance map.
        haze_color: (3,) float32 colour distant objects fade to.
        visibility: Metres at which the haze covers 63 % of an object's colour.
    """

    def __init__(self, camera: Camera, haze_color: Sequence[float], visibility: float,
                 void_id: int = 255) -> None:
        self.camera = camera
        shape = (camera.height, camera.width)
        self.image = np.zeros(shape + (3,), dtype=np.float32)
        self.semantic = np.full(shape, void_id, dtype=np.uint8)
        self.instance = np.zeros(shape, dtype=np.uint16)
        self.shade: Optional[np.ndarray] = None
        self.things_drawn = False
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

        ``polygons`` may also be one (P, N, 2) array of P polygons.

        ``label`` None paints the image only (details such as windows); otherwise the
        semantic map gets ``label`` and the instance map ``instance``.
        """
        if isinstance(polygons, np.ndarray) and polygons.ndim == 3:
            points = list(_fixed_point(polygons)) if polygons.shape[1] >= 3 else []
        else:
            points = [_fixed_point(p) for p in polygons if len(p) >= 3]
        if not points:
            return
        color = tuple(float(c) for c in color)
        targets = [(self.image, color)]
        if label is not None:
            targets.append((self.semantic, int(label)))
            if instance or self.things_drawn:
                targets.append((self.instance, int(instance)))
                self.things_drawn = True
            if self.shade is not None:
                targets.append((self.shade, 1.0))
        for target, value in targets:
            if convex:
                for p in points:
                    cv2.fillConvexPoly(target, p, value, cv2.LINE_8, _SHIFT)
            else:
                cv2.fillPoly(target, points, value, cv2.LINE_8, _SHIFT)

    def fill_world(self, polygons: Iterable[np.ndarray], color: Sequence[float],
                   label: Optional[int] = None, instance: int = 0, convex: bool = True,
                   haze: bool = True) -> None:
        """Fill planar world polygons, each (N, 3) float metres, clipped at the near plane.

        The colour is hazed by the mean camera depth of all the polygons together.
        """
        polygons = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in polygons]
        if not polygons:
            return
        points = np.concatenate(polygons) if len(polygons) > 1 else polygons[0]
        cam = self.camera.to_camera(points)
        depth = cam[:, 2]
        if depth.min() < NEAR_PLANE:
            self._fill_world_clipped(polygons, color, label, instance, convex, haze)
            return
        focal = self.camera.focal
        uv = np.empty((len(points), 2))
        uv[:, 0] = self.camera.cx + focal * cam[:, 0] / depth
        uv[:, 1] = self.camera.cy - focal * cam[:, 1] / depth
        if haze:
            color = self.hazed(color, float(depth.mean()))
        if len(polygons) == 1:
            self.fill_pixels([uv], color, label, instance, convex)
            return
        splits = np.cumsum([len(p) for p in polygons])[:-1]
        self.fill_pixels(np.split(uv, splits), color, label, instance, convex)

    def _fill_world_clipped(self, polygons, color, label, instance, convex, haze) -> None:
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

    def fill_parts(self, parts: Sequence[Tuple[np.ndarray, Sequence[float], Optional[int]]],
                   instance: int = 0, haze_each: bool = False) -> None:
        """Fill the convex world polygons of one object in order, with one projection.

        Args:
            parts: ``(points (N, 3) float, colour, train id or None)``; None paints the image
                only. All colours are hazed by the object's mean depth.
            instance: Instance id written with every labelled part.
            haze_each: Haze each part by its own mean depth instead (large ground areas).
        """
        if not parts:
            return
        sizes = [len(points) for points, _, _ in parts]
        cam = self.camera.to_camera(np.concatenate([points for points, _, _ in parts]))
        depth = cam[:, 2]
        focal = self.camera.focal
        uv = np.empty((len(cam), 2))
        safe = np.maximum(depth, NEAR_PLANE)
        uv[:, 0] = self.camera.cx + focal * cam[:, 0] / safe
        uv[:, 1] = self.camera.cy - focal * cam[:, 1] / safe
        fixed = _fixed_point(uv)
        weight = 1.0 - math.exp(-float(np.maximum(depth, 0.0).mean()) / self.visibility)
        haze = [float(h) * weight for h in self.haze_color]
        start = 0
        for (points, color, label), size in zip(parts, sizes):
            polygon = fixed[start:start + size]
            if depth[start:start + size].min() < NEAR_PLANE:  # clip this part on its own
                start += size
                self.fill_world([points], color, label, instance if label is not None else 0)
                continue
            if haze_each:
                weight = 1.0 - math.exp(-float(depth[start:start + size].mean())
                                        / self.visibility)
                haze = [float(h) * weight for h in self.haze_color]
            start += size
            hazed = tuple(float(c) * (1.0 - weight) + h for c, h in zip(color, haze))
            cv2.fillConvexPoly(self.image, polygon, hazed, cv2.LINE_8, _SHIFT)
            if label is None:
                continue
            cv2.fillConvexPoly(self.semantic, polygon, int(label), cv2.LINE_8, _SHIFT)
            if instance or self.things_drawn:
                cv2.fillConvexPoly(self.instance, polygon, int(instance), cv2.LINE_8, _SHIFT)
                self.things_drawn = True
            if self.shade is not None:
                cv2.fillConvexPoly(self.shade, polygon, 1.0, cv2.LINE_8, _SHIFT)

    def fill_hulls(self, solids: Sequence[np.ndarray], color: Sequence[float],
                   label: Optional[int] = None, instance: int = 0) -> None:
        """Fill the silhouettes (convex hulls) of convex solids, each (N, 3) world vertices."""
        if not solids:
            return
        sizes = np.cumsum([len(s) for s in solids])[:-1]
        uv, depth = self.camera.project(np.concatenate(solids))
        if depth.min() < NEAR_PLANE:
            return
        hulls = [cv2.convexHull(part.astype(np.float32)).reshape(-1, 2)
                 for part in np.split(uv, sizes)]
        self.fill_pixels(hulls, self.hazed(color, float(depth.mean())), label, instance,
                         convex=True)

    def shadow_world(self, polygons: Iterable[np.ndarray], factor: float) -> None:
        """Multiply the light in ground polygons (N, 3) by ``factor`` (cast shadows)."""
        if self.shade is None:
            self.shade = np.ones(self.semantic.shape, dtype=np.float32)
        for polygon in polygons:
            clipped = clip_near(polygon, self.camera)
            if len(clipped) >= 3:
                uv, _ = self.camera.project(clipped)
                cv2.fillConvexPoly(self.shade, _fixed_point(uv), float(factor), cv2.LINE_8,
                                   _SHIFT)

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
