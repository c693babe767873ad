"""The drawing surface of the synthetic scenes: image and labels painted together.

Every fill writes the colour into the image and, when a label is given, one value into the
label map with the same polygon, so image, semantic and instance maps stay consistent under the
painter's algorithm. A label-map value is ``instance id << 8 | texture code``: the instance
id (0 on stuff) in the high byte and, in the low byte, the train id, flipped by
``SHADED_CODE_FLIP`` where the cast shadow darkens the pixel. One 16-bit fill so carries the
semantic class, the instance id and the end of a shadow at once, and the maps are split out
once, with byte look-up tables, when the frame is finished. Colours are hazed by distance (aerial
perspective) when they are drawn, which costs nothing per pixel.
"""

from __future__ import annotations

import functools
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .camera import Camera, clip_near, NEAR_PLANE

_SHIFT = 4
_SCALE = float(1 << _SHIFT)
_LIMIT = 1.0e5  # pixels; keeps fixed-point coordinates far from int32 overflow

#: Instance ids live in the label map's high byte.
MAX_INSTANCE_ID = 255
#: Texture code of a pixel in the cast shadow: its train id XOR this (void 255 -> 127; train
#: ids must stay below 127).
SHADED_CODE_FLIP = 0x80


def _fixed_point(uv: np.ndarray) -> np.ndarray:
    scaled = uv * _SCALE
    if np.abs(scaled).max() > _LIMIT * _SCALE:
        np.clip(scaled, -_LIMIT * _SCALE, _LIMIT * _SCALE, out=scaled)
    return scaled.astype(np.int32)


def _mean(values: np.ndarray) -> float:
    """``float(values.mean())`` without ``np.mean``'s Python-level overhead (same value: the
    same pairwise sum divided by the count)."""
    return float(values.sum()) / values.size


def _pixel_bounds(fixed: np.ndarray) -> Tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive ends, of every pixel a fill of the (..., 2) fixed-point
    points can touch (one pixel of margin for the rasteriser's rounding)."""
    flat = fixed.reshape(-1, 2)
    low = flat.min(axis=0) >> _SHIFT
    high = flat.max(axis=0) >> _SHIFT
    return int(low[0]) - 1, int(low[1]) - 1, int(high[0]) + 2, int(high[1]) + 2


class Canvas:
    """Image and label map of one frame under construction.

    Attributes:
        camera: The frame's camera.
        image: (H, W, 3) float32 linear-ish RGB in 0..255.
        labels: (H, W) uint16 ``instance id << 8 | texture code``: the id (1..255) of the
            thing drawn last there, or 0 for stuff; the texture code is the train id (void
            where nothing labelled was drawn), XOR ``SHADED_CODE_FLIP`` in the cast shadow.
        shadow_factor: None, or the light factor of the cast shadow. It is cast on the ground
            before any thing is drawn; a labelled fill drawn later ends it under the fill, so
            objects drawn over a shadow are not darkened.
        haze_color: (3,) float32 colour distant objects fade to.
        visibility: Metres at which the haze covers 63 % of an object's colour.
    """

    def __init__(self, camera: Camera, haze_color: Sequence[float], visibility: float,
                 void_id: int = 255) -> None:
        self.camera = camera
        shape = (camera.height, camera.width)
        self.image = np.zeros(shape + (3,), dtype=np.float32)
        self.labels = np.full(shape, void_id, dtype=np.uint16)
        self.shadow_factor: Optional[float] = None
        self.haze_color = np.asarray(haze_color, dtype=np.float32)
        self.visibility = float(visibility)
        self._instance_classes: Dict[int, int] = {}
        # Per instance id, the pixel bounds of every polygon filled with it: a superset of
        # where it is visible, so measuring an instance reads only that window.
        self._instance_bounds: Dict[int, List[int]] = {}

    def hazed(self, color: Sequence[float], depth: float) -> tuple:
        """The colour an object of ``color`` shows at ``depth`` metres."""
        weight = 1.0 - math.exp(-max(depth, 0.0) / self.visibility)
        return tuple(float(c) * (1.0 - weight) + float(h) * weight
                     for c, h in zip(color, self.haze_color))

    def _label_value(self, label: int, instance: int, fixed: np.ndarray) -> int:
        """Label-map value of a fill; for a thing, notes its class and the fill's bounds.

        Args:
            label: Train id.
            instance: Instance id, 0 for stuff.
            fixed: (..., 2) int32 fixed-point points of the fill.
        """
        if not instance:
            return int(label)
        instance = int(instance)
        if not 0 < instance <= MAX_INSTANCE_ID:
            raise ValueError(f'instance id {instance} is not in 1..{MAX_INSTANCE_ID}: a frame '
                             f'holds at most {MAX_INSTANCE_ID} things')
        if self._instance_classes.setdefault(instance, int(label)) != int(label):
            raise ValueError(f'instance {instance} drawn as class {label} and '
                             f'{self._instance_classes[instance]}')
        x0, y0, x1, y1 = _pixel_bounds(fixed)
        bounds = self._instance_bounds.get(instance)
        if bounds is None:
            self._instance_bounds[instance] = [x0, y0, x1, y1]
        else:
            bounds[0], bounds[1] = min(bounds[0], x0), min(bounds[1], y0)
            bounds[2], bounds[3] = max(bounds[2], x1), max(bounds[3], y1)
        return instance << 8 | int(label)

    def fill_pixels(self, polygons: Sequence[np.ndarray], color: Sequence[float],
                    label: Optional[int] = None, instance: int = 0, convex: bool = False) -> None:
        """Fill pixel-space polygons, each (N, 2) float (column, row), with one colour.

        ``polygons`` may also be one (P, N, 2) array of P polygons.

        ``label`` None paints the image only (details such as windows); otherwise the
        pixels get the semantic class ``label`` and the instance id ``instance`` (0: stuff).
        """
        if isinstance(polygons, np.ndarray) and polygons.ndim == 3:
            points = list(_fixed_point(polygons)) if polygons.shape[1] >= 3 else []
        else:
            points = [_fixed_point(p) for p in polygons if len(p) >= 3]
        if not points:
            return
        targets = [(self.image, tuple(float(c) for c in color))]
        if label is not None:
            value = self._label_value(label, instance, np.concatenate(points)
                                      if instance and len(points) > 1 else points[0])
            targets.append((self.labels, value))
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
            color = self.hazed(color, _mean(depth))
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
            depths.append(_mean(depth))
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
        weight = 1.0 - math.exp(-_mean(np.maximum(depth, 0.0)) / self.visibility)
        haze = [float(h) * weight for h in self.haze_color]
        image, labels = self.image, self.labels
        values: Dict[int, int] = {}
        starts = np.cumsum([0] + sizes[:-1])
        nearest = np.minimum.reduceat(depth, starts).tolist()
        if haze_each:
            means = (np.add.reduceat(depth, starts) / np.asarray(sizes)).tolist()
        start = 0
        for index, ((points, color, label), size) in enumerate(zip(parts, sizes)):
            polygon = fixed[start:start + size]
            start += size
            if nearest[index] < NEAR_PLANE:  # clip this part on its own
                self.fill_world([points], color, label, instance if label is not None else 0)
                continue
            if haze_each:
                weight = 1.0 - math.exp(-means[index] / self.visibility)
                haze = [float(h) * weight for h in self.haze_color]
            keep = 1.0 - weight
            hazed = (float(color[0]) * keep + haze[0], float(color[1]) * keep + haze[1],
                     float(color[2]) * keep + haze[2])
            cv2.fillConvexPoly(image, polygon, hazed, cv2.LINE_8, _SHIFT)
            if label is None:
                continue
            value = values.get(label)
            if value is None:  # the bounds of all parts cover every labelled one
                value = values[label] = self._label_value(label, instance, fixed)
            cv2.fillConvexPoly(labels, polygon, value, cv2.LINE_8, _SHIFT)

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
        self.fill_pixels(hulls, self.hazed(color, _mean(depth)), label, instance,
                         convex=True)

    def shadow_world(self, polygons: Iterable[np.ndarray], factor: float) -> None:
        """Cast a shadow of light ``factor`` on ground polygons (N, 3), before any thing is
        drawn; labelled fills drawn later end it under them."""
        if self._instance_classes:
            raise RuntimeError('cast shadows before drawing things: a shadow only darkens '
                               'stuff')
        if self.shadow_factor is not None:
            raise RuntimeError('one cast shadow per frame')
        self.shadow_factor = float(factor)
        mask = np.zeros(self.labels.shape, dtype=np.uint8)
        for polygon in polygons:
            clipped = clip_near(polygon, self.camera)
            if len(clipped) >= 3:
                uv, _ = self.camera.project(clipped)
                cv2.fillConvexPoly(mask, _fixed_point(uv), 1, cv2.LINE_8, _SHIFT)
        self.labels[mask.view(bool)] ^= SHADED_CODE_FLIP

    def label_rows(self, rows: int, label: int) -> None:
        """Give the top ``rows`` rows the stuff class ``label`` (no image change)."""
        self.labels[:rows] = int(label)

    def label_polygon(self, uv: np.ndarray, label: int,
                      blend: Optional[Tuple[Sequence[float], float]] = None) -> None:
        """Give a convex pixel polygon the stuff class ``label`` without ending a cast shadow
        there (a see-through object); optionally blend ``(colour, alpha)`` over its image.

        Args:
            uv: (N, 2) float pixel (column, row) corners.
        """
        points = np.round(np.clip(uv, -1e5, 1e5) * 16).astype(np.int32)
        h, w = self.labels.shape
        col0 = int(max(np.floor(uv[:, 0].min()), 0))
        col1 = int(min(np.ceil(uv[:, 0].max()) + 1, w))
        row0 = int(max(np.floor(uv[:, 1].min()), 0))
        row1 = int(min(np.ceil(uv[:, 1].max()) + 1, h))
        if col1 <= col0 or row1 <= row0:
            return
        mask = np.zeros((row1 - row0, col1 - col0), dtype=np.uint8)
        offset = np.array([col0, row0]) * 16
        cv2.fillConvexPoly(mask, points - offset, 1, cv2.LINE_8, 4)
        inside = mask.astype(bool)
        if blend is not None:
            color, alpha = blend
            region = self.image[row0:row1, col0:col1]
            region[inside] += (np.asarray(color, dtype=np.float32) - region[inside]) * alpha
        labels = self.labels[row0:row1, col0:col1]
        old = labels[inside]
        shaded = (old >= 127) & (old <= 254)  # stuff (high byte 0) with a flipped code
        labels[inside] = np.where(shaded, int(label) ^ SHADED_CODE_FLIP,
                                  int(label)).astype(np.uint16)

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
        self.fill_pixels([hull], self.hazed(color, _mean(depth)), label, instance,
                         convex=True)

    def texture_codes(self) -> np.ndarray:
        """(H, W) uint8: the semantic train id (255 void), XOR ``SHADED_CODE_FLIP`` where
        the cast shadow applies. ``semantic_from_codes`` turns it into the semantic map."""
        return self.labels.astype(np.uint8)  # the low byte

    def measure_instances(self) -> Tuple[List[int], List[Tuple[int, int, int, int]],
                                         List[int]]:
        """Every drawn instance id still visible, ascending, with its (x0, y0, x1, y1) box
        (exclusive ends) and its pixel count."""
        h, w = self.labels.shape
        ids, boxes, areas = [], [], []
        for instance in sorted(self._instance_bounds):
            x0, y0, x1, y1 = self._instance_bounds[instance]
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            value = instance << 8 | self._instance_classes[instance]
            mask = cv2.compare(self.labels[y0:y1, x0:x1], value, cv2.CMP_EQ)
            area = cv2.countNonZero(mask)
            if area:
                bx, by, bw, bh = cv2.boundingRect(mask)
                ids.append(instance)
                boxes.append((x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh))
                areas.append(area)
        return ids, boxes, areas

    def instance_map(self, ids: Sequence[int]) -> np.ndarray:
        """(H, W) int32: ``ids[k]`` numbered k + 1, every other pixel 0."""
        table = np.zeros(256, dtype=np.int32)
        table[np.asarray(ids, dtype=np.intp)] = np.arange(1, len(ids) + 1, dtype=np.int32)
        return cv2.LUT((self.labels >> 8).astype(np.uint8), table)


def semantic_from_codes(codes: np.ndarray) -> np.ndarray:
    """(H, W) uint8 train ids from ``Canvas.texture_codes`` (the shadow flag removed).

    Train ids are below 127 and void is 255, so shaded codes (id XOR 0x80) are 127..254.
    """
    table = np.arange(256, dtype=np.uint8)
    table[127:255] ^= SHADED_CODE_FLIP
    return cv2.LUT(codes, table)

@functools.lru_cache(maxsize=None)
def unit_circle(segments: int) -> Tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of ``segments`` angles evenly spaced from 0, each (segments,) float64
    (read-only; drawn many times per frame)."""
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    cos, sin = np.cos(angles), np.sin(angles)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


def circle_points(center: Sequence[float], radius: float, axis_u: Sequence[float],
                  axis_v: Sequence[float], segments: int = 12) -> np.ndarray:
    """(segments, 3) float64 world points of a circle spanned by two unit axes."""
    cos, sin = unit_circle(segments)
    u = np.asarray(axis_u, dtype=np.float64)
    v = np.asarray(axis_v, dtype=np.float64)
    return (np.asarray(center, dtype=np.float64)[None, :]
            + radius * (cos[:, None] * u[None, :] + sin[:, None] * v[None, :]))


def ellipse_points(center: Sequence[float], radius_u: float, radius_v: float,
                   axis_u: Sequence[float], axis_v: Sequence[float],
                   segments: int = 12) -> np.ndarray:
    """(segments, 3) float64 world points of an ellipse spanned by two unit axes."""
    cos, sin = unit_circle(segments)
    u = np.asarray(axis_u, dtype=np.float64)
    v = np.asarray(axis_v, dtype=np.float64)
    return (np.asarray(center, dtype=np.float64)[None, :]
            + radius_u * cos[:, None] * u[None, :]
            + radius_v * sin[:, None] * v[None, :])
