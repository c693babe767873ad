"""Vehicles of the synthetic streets: cars, trucks, buses and trams.

Vehicles are convex solids (boxes, wheel prisms) whose visible faces are shaded by the sun
direction, with window insets, lights and a ground shadow; far away they shrink to one flat
silhouette. Each ``make_*`` function samples one vehicle, takes its instance id from the
:class:`InstanceCounter` and returns a :class:`Drawable`.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import List, Sequence, Tuple

import numpy as np

from .canvas import Canvas, unit_circle
from .instances import _pixel_height, canvas_depth, InstanceCounter, Pose
from .layout import jitter, pick, TrainId
from .props import Drawable

_CAR_COLORS = ((200, 200, 205), (30, 30, 34), (150, 20, 25), (25, 50, 120), (120, 122, 128),
               (235, 235, 230), (60, 90, 60), (180, 150, 60), (90, 60, 40), (70, 110, 160))
_GLASS = (45, 55, 68)
_BOX_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (2, 3, 7, 6), (0, 3, 7, 4), (1, 2, 6, 5))


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float,
         top_x: float = 0.0, top_z0: float = 0.0, top_z1: float = 0.0) -> np.ndarray:
    """(8, 3) local corners; the top face can be inset (cabins): bottom 0-3, top 4-7."""
    return np.array([
        [x0, y0, z0], [x1, y0, z0], [x1, y0, z1], [x0, y0, z1],
        [x0 + top_x, y1, z0 + top_z0], [x1 - top_x, y1, z0 + top_z0],
        [x1 - top_x, y1, z1 - top_z1], [x0 + top_x, y1, z1 - top_z1]])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (N, 3) arrays: ``np.cross``'s arithmetic without its
    Python-level overhead (a fifth of a vehicle's drawing time)."""
    out = np.empty(a.shape)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _visible_faces(canvas: Canvas, corners: np.ndarray):
    """Faces of a box (8, 3) that face the camera: list of (corners (4, 3), unit normal)."""
    faces = corners[np.asarray(_BOX_FACES)]
    centers = faces.sum(axis=1) / faces.shape[1]  # = mean, without np.mean's overhead
    normals = _cross(faces[:, 1] - faces[:, 0], faces[:, 2] - faces[:, 0])
    outward = np.einsum('ij,ij->i', normals, centers - corners.sum(axis=0) / len(corners))
    normals[outward < 0] *= -1.0
    lengths = np.linalg.norm(normals, axis=1)
    valid = lengths > 1e-9
    normals[valid] /= lengths[valid, None]
    facing = np.einsum('ij,ij->i', normals, canvas.camera.position[None, :] - centers)
    return [(faces[i], normals[i]) for i in np.flatnonzero(valid & (facing > 1e-6))]


def _shade(normal: np.ndarray, sun: np.ndarray, color) -> Tuple[float, float, float]:
    light = 0.62 + 0.45 * max(float(np.dot(normal, sun)), 0.0)
    return tuple(min(c * light, 255.0) for c in color)


def _inset(points: np.ndarray, fraction: float, bottom: float = 0.0) -> np.ndarray:
    """A face shrunk towards its centre (``bottom`` lifts the lower edge further)."""
    center = points.sum(axis=0) / len(points)
    inset = center + (points - center) * (1.0 - fraction)
    if bottom:
        low = inset[:, 1] < center[1]
        inset[low, 1] += (center[1] - inset[low, 1]) * bottom
    return inset


@dataclass
class VehicleStyle:
    color: Tuple[float, float, float]
    sun: np.ndarray


def _solid_parts(canvas: Canvas, pose: Pose, local: np.ndarray, style: VehicleStyle,
                 label: int, glass: str = '') -> list:
    """Parts for :meth:`Canvas.fill_parts` of a box's visible faces; ``glass`` names faces
    (f: front, b: back, s: sides) that get a window inset."""
    parts = []
    forward = np.array([math.sin(pose.heading), 0.0, math.cos(pose.heading)])
    for points, normal in _visible_faces(canvas, pose.to_world(local)):
        parts.append((points, _shade(normal, style.sun, style.color), label))
        along = float(np.dot(normal, forward))
        kind = 'f' if along > 0.7 else 'b' if along < -0.7 else 's' if abs(normal[1]) < 0.7 \
            else 't'
        if kind in glass:
            parts.append((_inset(points, 0.14 if kind != 's' else 0.08, 0.1),
                          _shade(normal, style.sun, _GLASS), None))
    return parts


def _wheel_solids(pose: Pose, half_width: float, axles: Sequence[float],
                  radius: float) -> List[np.ndarray]:
    solids = []
    ring = np.zeros((8, 3))
    cos, sin = unit_circle(8)
    ring[:, 1] = radius + radius * sin
    ring[:, 2] = radius * cos
    for forward in axles:
        for side in (-1.0, 1.0):
            outer = ring + np.array([side * half_width, 0.0, forward])
            inner = outer - np.array([side * 0.24, 0.0, 0.0])
            solids.append(pose.to_world(np.concatenate([outer, inner])))
    return solids


def _shadow_part(pose: Pose, half_width: float, half_length: float):
    footprint = np.array([[-half_width, 0.0, -half_length], [half_width, 0.0, -half_length],
                          [half_width, 0.0, half_length], [-half_width, 0.0, half_length]])
    return (pose.to_world(footprint * np.array([1.15, 1.0, 1.05])), (22, 22, 26), None)


def _light_parts(canvas: Canvas, pose: Pose, half_width: float, half_length: float,
                 rear_y: float, front_y: float) -> list:
    """Tail lights and plate on the rear, head lights on the front, whichever faces us."""
    forward = np.array([math.sin(pose.heading), 0.0, math.cos(pose.heading)])
    to_camera = canvas.camera.position - np.array([pose.x, 0.0, pose.z])
    along = float(np.dot(forward, to_camera))
    if abs(along) < half_length:
        return []
    rear = along < 0
    z = -half_length - 0.02 if rear else half_length + 0.02
    y = rear_y if rear else front_y
    color = (190, 25, 25) if rear else (235, 235, 210)
    quads = []
    for side in (-1.0, 1.0):
        x0, x1 = side * (half_width - 0.08), side * (half_width - 0.32)
        quads.append(([[x0, y, z], [x1, y, z], [x1, y + 0.14, z], [x0, y + 0.14, z]], color))
    quads.append(([[-0.26, y - 0.28, z], [0.26, y - 0.28, z], [0.26, y - 0.16, z],
                   [-0.26, y - 0.16, z]], (230, 230, 225)))
    return [(pose.to_world(np.asarray(q)), c, None) for q, c in quads]


def _silhouette(canvas: Canvas, pose: Pose, solids: Sequence[np.ndarray], color,
                label: int, instance: int) -> None:
    """Far-away vehicles: one flat convex silhouette, no details."""
    canvas.fill_hulls([pose.to_world(np.concatenate(solids))], color, label, instance)


def _nearest_end_at(pose: Pose, half_length: float) -> Pose:
    """Move a vehicle placed by its nearest end (``pose.z``) to its centre."""
    return Pose(pose.x, pose.z + half_length * abs(math.cos(pose.heading)), pose.heading)


def make_car(rng: np.random.Generator, counter: InstanceCounter, pose: Pose,
             sun: np.ndarray) -> Drawable:
    instance = counter.new(TrainId.CAR)
    length = rng.uniform(3.8, 4.9)
    width = rng.uniform(1.65, 1.9)
    height = rng.uniform(1.35, 1.75)
    hood = rng.uniform(0.55, 1.1)
    style = VehicleStyle(jitter(rng, pick(rng, _CAR_COLORS), 14), sun)
    half_w, half_l = width / 2, length / 2
    pose = _nearest_end_at(pose, half_l)
    body = _box(-half_w, half_w, 0.28, 0.95, -half_l, half_l)
    cabin = _box(-half_w + 0.06, half_w - 0.06, 0.95, height, -half_l + 0.25, half_l - hood,
                 top_x=0.12, top_z0=0.45, top_z1=0.55)

    def draw(canvas: Canvas) -> None:
        pixels = _pixel_height(canvas, pose, height)
        if pixels < 24:
            wheels = _box(-half_w, half_w, 0.0, 0.3, -half_l + 0.5, half_l - 0.5)
            _silhouette(canvas, pose, (body, cabin, wheels), _shade(
                np.array([0.0, 0.0, -1.0]), sun, style.color), TrainId.CAR, instance)
            return
        canvas.fill_parts([_shadow_part(pose, half_w, half_l)])
        canvas.fill_hulls(_wheel_solids(pose, half_w - 0.02, (-half_l + 0.8, half_l - 0.85),
                                        0.32), (22, 22, 24), TrainId.CAR, instance)
        parts = (_solid_parts(canvas, pose, body, style, TrainId.CAR)
                 + _solid_parts(canvas, pose, cabin, style, TrainId.CAR, glass='fbs'))
        if pixels > 30:
            parts += _light_parts(canvas, pose, half_w, half_l, 0.72, 0.7)
        canvas.fill_parts(parts, instance)
    return Drawable(canvas_depth(pose), draw)


def make_truck(rng: np.random.Generator, counter: InstanceCounter, pose: Pose,
               sun: np.ndarray) -> Drawable:
    instance = counter.new(TrainId.TRUCK)
    cargo_length = rng.uniform(4.5, 8.5)
    width = rng.uniform(2.3, 2.55)
    height = rng.uniform(3.0, 3.9)
    cab_style = VehicleStyle(jitter(rng, pick(rng, _CAR_COLORS), 14), sun)
    box_style = VehicleStyle(jitter(rng, pick(rng, ((225, 225, 220), (150, 150, 150),
                                                    (40, 70, 140), (170, 40, 30))), 12), sun)
    half_w = width / 2
    total = cargo_length + 2.3
    pose = _nearest_end_at(pose, total / 2)
    front = total / 2
    cab = _box(-half_w, half_w, 0.5, rng.uniform(2.6, 3.0), front - 2.2, front)
    cargo = _box(-half_w, half_w, 0.6, height, -total / 2, front - 2.4)
    chassis = _box(-half_w + 0.2, half_w - 0.2, 0.45, 0.65, -total / 2, front)

    def draw(canvas: Canvas) -> None:
        canvas.fill_parts([_shadow_part(pose, half_w, total / 2)])
        canvas.fill_hulls(_wheel_solids(pose, half_w - 0.05, (-total / 2 + 1.2, front - 1.4),
                                        0.5), (22, 22, 24), TrainId.TRUCK, instance)
        parts = _solid_parts(canvas, pose, chassis, VehicleStyle((35, 35, 38), sun),
                             TrainId.TRUCK)
        boxes = [(cargo, box_style, ''), (cab, cab_style, 'f')]
        boxes.sort(key=lambda part: -_camera_distance(canvas, pose.to_world(part[0])))
        for corners, style, glass in boxes:
            parts += _solid_parts(canvas, pose, corners, style, TrainId.TRUCK, glass)
        canvas.fill_parts(parts, instance)
    return Drawable(canvas_depth(pose), draw)


def _window_band_parts(canvas: Canvas, pose: Pose, y0: float, y1: float, half_w: float,
                       half_l: float, color) -> list:
    """Glass bands along the long sides of a bus or tram body that face the camera."""
    parts = []
    to_camera = canvas.camera.position - np.array([pose.x, 0.0, pose.z])
    right = np.array([math.cos(pose.heading), 0.0, -math.sin(pose.heading)])
    side = 1.0 if float(np.dot(right, to_camera)) > 0 else -1.0
    if abs(float(np.dot(right, to_camera))) > half_w:
        x = side * (half_w + 0.02)
        band = np.array([[x, y0, -half_l + 0.6], [x, y1, -half_l + 0.6], [x, y1, half_l - 0.6],
                         [x, y0, half_l - 0.6]])
        parts.append((pose.to_world(band), color, None))
    return parts


def make_bus(rng: np.random.Generator, counter: InstanceCounter, pose: Pose,
             sun: np.ndarray) -> Drawable:
    instance = counter.new(TrainId.BUS)
    length = rng.uniform(10.0, 13.5)
    width = 2.55
    height = rng.uniform(2.9, 3.3)
    style = VehicleStyle(jitter(rng, pick(rng, ((230, 190, 30), (200, 40, 35), (235, 235, 230),
                                                (40, 90, 170), (60, 140, 80))), 12), sun)
    half_w, half_l = width / 2, length / 2
    pose = _nearest_end_at(pose, half_l)
    body = _box(-half_w, half_w, 0.35, height, -half_l, half_l)

    def draw(canvas: Canvas) -> None:
        canvas.fill_parts([_shadow_part(pose, half_w, half_l)])
        canvas.fill_hulls(_wheel_solids(pose, half_w - 0.05, (-half_l + 2.8, half_l - 2.4),
                                        0.5), (22, 22, 24), TrainId.BUS, instance)
        parts = _solid_parts(canvas, pose, body, style, TrainId.BUS, glass='fb')
        parts += _window_band_parts(canvas, pose, 1.3, height - 0.35, half_w, half_l,
                                    _shade(np.zeros(3), sun, _GLASS))
        parts += _light_parts(canvas, pose, half_w, half_l, 0.75, 0.6)
        canvas.fill_parts(parts, instance)
    return Drawable(canvas_depth(pose), draw)


def make_tram(rng: np.random.Generator, counter: InstanceCounter, pose: Pose,
              sun: np.ndarray) -> Drawable:
    instance = counter.new(TrainId.TRAIN)
    length = rng.uniform(18.0, 32.0)
    width = 2.65
    height = rng.uniform(3.3, 3.6)
    livery = pick(rng, (((240, 240, 235), (200, 30, 40)), ((245, 215, 40), (240, 240, 235)),
                        ((235, 235, 235), (40, 120, 70)), ((190, 40, 40), (235, 235, 230))))
    style = VehicleStyle(jitter(rng, livery[0], 8), sun)
    stripe = VehicleStyle(jitter(rng, livery[1], 8), sun)
    half_w, half_l = width / 2, length / 2
    pose = _nearest_end_at(pose, half_l)
    body = _box(-half_w, half_w, 0.3, height, -half_l, half_l)
    skirt = _box(-half_w - 0.01, half_w + 0.01, 0.3, 0.9, -half_l - 0.01, half_l + 0.01)
    pantograph = pose.to_world(np.array([[-0.6, height, 0.0], [0.6, height, 0.0],
                                         [0.6, height + 1.6, 0.4], [-0.6, height + 1.6, 0.4]]))

    def draw(canvas: Canvas) -> None:
        parts = [_shadow_part(pose, half_w, half_l), (pantograph, (40, 40, 40), TrainId.TRAIN)]
        parts += _solid_parts(canvas, pose, body, style, TrainId.TRAIN, glass='fb')
        parts += [part for part in _solid_parts(canvas, pose, skirt, stripe, TrainId.TRAIN)
                  if np.ptp(part[0][:, 1]) > 0.1]  # its sides only, not its top face
        parts += _window_band_parts(canvas, pose, 1.2, height - 0.5, half_w, half_l,
                                    _shade(np.zeros(3), sun, _GLASS))
        canvas.fill_parts(parts, instance)
    return Drawable(canvas_depth(pose), draw)


def _camera_distance(canvas: Canvas, points: np.ndarray) -> float:
    cam = canvas.camera
    center = points.mean(axis=0)
    return float(np.hypot(center[0] - cam.lateral, center[2]))
