"""Thing instances of the synthetic streets: cars, trucks, buses, trams, persons, riders with
bicycles and motorcycles.

Vehicles are convex solids (boxes, wheel prisms) whose visible faces are shaded by the sun
direction; persons and two-wheelers are upright billboards made of a few parts. Every object
gets its instance id from an :class:`InstanceCounter` when it is sampled; the generator later
drops ids that ended up fully hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import List, Sequence, Tuple

import numpy as np

from .canvas import Canvas, ellipse_points, unit_circle
from .layout import jitter, pick, StreetLayout, TrainId
from .props import Drawable

_CAR_COLORS = ((200, 200, 205), (30, 30, 34), (150, 20, 25), (25, 50, 120), (120, 122, 128),
               (235, 235, 230), (60, 90, 60), (180, 150, 60), (90, 60, 40), (70, 110, 160))
_CLOTHES = ((40, 40, 45), (60, 70, 110), (150, 30, 40), (200, 200, 195), (90, 80, 60),
            (30, 90, 60), (170, 120, 70), (110, 110, 115), (220, 160, 40), (80, 40, 90))
_SKIN = ((235, 195, 165), (200, 150, 110), (150, 100, 70), (95, 65, 45))
_GLASS = (45, 55, 68)
_BOX_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (2, 3, 7, 6), (0, 3, 7, 4), (1, 2, 6, 5))


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


def _pixel_height(canvas: Canvas, pose: Pose, height: float) -> float:
    """Approximate on-screen height in pixels of an object standing at ``pose``."""
    depth = max(float(canvas.camera.to_camera(np.array([[pose.x, 0.0, pose.z]]))[0, 2]), 0.5)
    return canvas.camera.focal * height / depth


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


def canvas_depth(pose: Pose) -> float:
    """Sort key: forward distance of an object's ground position."""
    return pose.z


def _quad(u0: float, v0: float, u1: float, v1: float, width0: float,
          width1: float) -> np.ndarray:
    """2-D limb from (u0, v0) to (u1, v1) with end widths, as (4, 2) metres."""
    direction = np.array([u1 - u0, v1 - v0])
    length = max(float(np.linalg.norm(direction)), 1e-6)
    normal = np.array([-direction[1], direction[0]]) / length
    a, b = np.array([u0, v0]), np.array([u1, v1])
    return np.array([a + normal * width0 / 2, b + normal * width1 / 2,
                     b - normal * width1 / 2, a - normal * width0 / 2])


def _to_world_2d(points: np.ndarray, x: float, z: float, facing: float) -> np.ndarray:
    """Billboard (N, 2) metres -> world (N, 3); ``facing`` -1 mirrors left-right."""
    world = np.empty((len(points), 3))
    world[:, 0] = x + points[:, 0] * facing
    world[:, 1] = points[:, 1]
    world[:, 2] = z
    return world


@dataclass
class Figure:
    """A person's proportions and colours."""

    height: float
    shirt: Tuple[float, float, float]
    pants: Tuple[float, float, float]
    skin: Tuple[float, float, float]
    hair: Tuple[float, float, float]


def _sample_figure(rng: np.random.Generator) -> Figure:
    return Figure(height=rng.uniform(1.5, 1.95), shirt=jitter(rng, pick(rng, _CLOTHES), 18),
                  pants=jitter(rng, pick(rng, _CLOTHES), 14),
                  skin=jitter(rng, pick(rng, _SKIN), 8),
                  hair=jitter(rng, pick(rng, ((30, 25, 20), (90, 60, 35), (180, 150, 90),
                                              (120, 120, 120))), 8))


def _person_parts(rng: np.random.Generator, figure: Figure, side_view: bool, stride: float):
    """Limbs as (polygon (N, 2) metres, colour) for a standing or walking person."""
    h = figure.height
    hip, shoulder, neck = 0.5 * h, 0.81 * h, 0.86 * h
    parts = []
    if side_view:
        parts.append((_quad(0, hip, -stride, 0.0, 0.15, 0.1), figure.pants))
        parts.append((_quad(0, hip, stride, 0.0, 0.15, 0.1), figure.pants))
        parts.append((_quad(0, hip - 0.05, 0, shoulder, 0.26, 0.3), figure.shirt))
        parts.append((_quad(0, shoulder, stride * 0.7, hip * 0.95, 0.09, 0.08), figure.shirt))
    else:
        spread = rng.uniform(0.04, 0.12)
        parts.append((_quad(-0.09, hip, -0.09 - spread, 0.0, 0.16, 0.11), figure.pants))
        parts.append((_quad(0.09, hip, 0.09 + spread, 0.0, 0.16, 0.11), figure.pants))
        parts.append((_quad(-0.22, shoulder - 0.03, -0.26, hip * 0.92, 0.09, 0.08),
                      figure.shirt))
        parts.append((_quad(0.22, shoulder - 0.03, 0.26, hip * 0.92, 0.09, 0.08), figure.shirt))
        parts.append((_quad(0, hip - 0.05, 0, shoulder, 0.36, 0.44), figure.shirt))
    parts.append((_quad(0, shoulder, 0, neck + 0.02, 0.1, 0.1), figure.skin))
    head = 0.065 * h
    parts.append((ellipse_points((0, neck + head, 0), head * 0.8, head, _X2, _Y2, 10)[:, :2],
                  figure.skin))
    parts.append((ellipse_points((0, neck + head * 1.35, 0), head * 0.82, head * 0.7, _X2, _Y2,
                                 10)[:, :2], figure.hair))
    return parts


_X2 = (1.0, 0.0, 0.0)
_Y2 = (0.0, 1.0, 0.0)


def make_person(rng: np.random.Generator, counter: InstanceCounter, x: float,
                z: float) -> Drawable:
    instance = counter.new(TrainId.PERSON)
    figure = _sample_figure(rng)
    side_view = rng.random() < 0.45
    facing = 1.0 if rng.random() < 0.5 else -1.0
    parts = _person_parts(rng, figure, side_view, rng.uniform(0.0, 0.3))
    shadow = ellipse_points((x, 0.0, z), 0.35, 0.25, (1, 0, 0), (0, 0, 1), 8)
    full = [(shadow, (25, 25, 28), None)] + [
        (_to_world_2d(polygon, x, z, facing), color, TrainId.PERSON) for polygon, color in parts]
    h = figure.height
    coarse = [(_to_world_2d(_quad(0, 0, 0, 0.88 * h, 0.4, 0.4), x, z, facing), figure.shirt,
               TrainId.PERSON), full[-1]]

    def draw(canvas: Canvas) -> None:
        small = _pixel_height(canvas, Pose(x, z, 0.0), h) < 20
        canvas.fill_parts(coarse if small else full, instance)
    return Drawable(z, draw)


def _ring(center_u: float, center_v: float, radius: float, thickness: float):
    outer = ellipse_points((center_u, center_v, 0), radius, radius, _X2, _Y2, 14)[:, :2]
    inner = ellipse_points((center_u, center_v, 0), radius - thickness, radius - thickness,
                           _X2, _Y2, 14)[:, :2]
    return outer, inner


def _two_wheeler_side(motor: bool, color):
    """Side-view parts of a bicycle or motorcycle, facing +u: list of (polygons, colour)."""
    radius = 0.31 if motor else 0.34
    base = 0.65 if motor else 0.53
    tyre = (22, 22, 24)
    parts = []
    for u in (-base, base):
        if motor:
            parts.append(([ellipse_points((u, radius, 0), radius, radius, _X2, _Y2, 14)[:, :2]],
                          tyre))
            parts.append(([ellipse_points((u, radius, 0), 0.14, 0.14, _X2, _Y2, 10)[:, :2]],
                          (140, 140, 140)))
        else:
            parts.append((list(_ring(u, radius, radius, 0.05)), tyre))
    if motor:
        parts.append(([np.array([[-0.5, 0.45], [0.45, 0.45], [0.6, 0.85], [0.2, 0.95],
                                 [-0.65, 0.85]])], color))
        parts.append(([_quad(0.55, 0.95, base, radius, 0.07, 0.07)], (60, 60, 60)))
    else:
        seat = (-0.12, 0.9)
        bar = (0.42, 0.98)
        crank = (0.0, 0.3)
        for a, b in ((seat, crank), (crank, (-base, radius)), (seat, (-base, radius)),
                     (seat, bar), (crank, bar), (bar, (base, radius))):
            parts.append(([_quad(a[0], a[1], b[0], b[1], 0.045, 0.045)], color))
    return parts


def _rider_side_parts(figure: Figure, motor: bool):
    h = figure.height
    hip = (-0.2, 1.0) if not motor else (-0.15, 0.95)
    shoulder = (hip[0] + 0.22, hip[1] + 0.32 * h)
    hand = (0.42, 1.0) if not motor else (0.5, 1.0)
    knee = (hip[0] + 0.3, hip[1] - 0.2)
    foot = (0.05, 0.3) if not motor else (0.1, 0.4)
    head = 0.065 * h
    parts = [
        (_quad(*hip, *knee, 0.16, 0.13), figure.pants),
        (_quad(*knee, *foot, 0.13, 0.1), figure.pants),
        (_quad(*hip, *shoulder, 0.3, 0.32), figure.shirt),
        (_quad(*shoulder, *hand, 0.09, 0.08), figure.shirt),
        (ellipse_points((shoulder[0] + 0.05, shoulder[1] + 0.06 + head, 0), head * 0.9,
                        head * (1.15 if motor else 1.0), _X2, _Y2, 10)[:, :2],
         (40, 40, 45) if motor else figure.skin),
    ]
    return parts


def _rear_view_parts(figure: Figure, motor: bool, color):
    """Two-wheeler and rider seen from behind or in front: (vehicle parts, rider parts)."""
    h = figure.height
    tyre = (22, 22, 24)
    wheel_half = 0.09 if motor else 0.03
    vehicle = [([np.array([[-wheel_half, 0.0], [wheel_half, 0.0], [wheel_half, 0.66],
                           [-wheel_half, 0.66]])], tyre)]
    if motor:
        vehicle.append(([np.array([[-0.3, 0.45], [0.3, 0.45], [0.26, 0.95], [-0.26, 0.95]])],
                        color))
    vehicle.append(([_quad(-0.3, 1.02, 0.3, 1.02, 0.04, 0.04)], (40, 40, 40)))
    seat = 0.95
    rider = [
        (_quad(-0.12, seat, -0.16, 0.3, 0.14, 0.11), figure.pants),
        (_quad(0.12, seat, 0.16, 0.3, 0.14, 0.11), figure.pants),
        (_quad(0.0, seat - 0.05, 0.0, seat + 0.32 * h, 0.36, 0.42), figure.shirt),
        (_quad(-0.2, seat + 0.3 * h, -0.3, 1.02, 0.09, 0.08), figure.shirt),
        (_quad(0.2, seat + 0.3 * h, 0.3, 1.02, 0.09, 0.08), figure.shirt),
        (ellipse_points((0.0, seat + 0.32 * h + 0.08 * h, 0), 0.085 * h * 0.8,
                        0.08 * h, _X2, _Y2, 10)[:, :2], (40, 40, 45) if motor else figure.hair),
    ]
    return vehicle, rider


def make_rider(rng: np.random.Generator, counter: InstanceCounter, x: float, z: float,
               side_view: bool) -> Drawable:
    """A rider on a bicycle or motorcycle: two instances (rider, vehicle)."""
    motor = rng.random() < 0.42
    vehicle_id = counter.new(TrainId.MOTORCYCLE if motor else TrainId.BICYCLE)
    rider_id = counter.new(TrainId.RIDER)
    vehicle_label = TrainId.MOTORCYCLE if motor else TrainId.BICYCLE
    figure = _sample_figure(rng)
    color = jitter(rng, pick(rng, _CAR_COLORS), 14)
    facing = 1.0 if rng.random() < 0.5 else -1.0
    if side_view:
        vehicle = _two_wheeler_side(motor, color)
        rider = _rider_side_parts(figure, motor)
    else:
        vehicle, rider = _rear_view_parts(figure, motor, color)

    shadow = ellipse_points((x, 0.0, z), 0.9 if side_view else 0.4, 0.3, (1, 0, 0),
                            (0, 0, 1), 8)
    rings = []
    vehicle_parts = []
    for polygons, part_color in vehicle:
        world = [_to_world_2d(p, x, z, facing) for p in polygons]
        if len(world) > 1:
            rings.append((world, part_color))
        else:
            vehicle_parts.append((world[0], part_color, vehicle_label))
    rider_parts = [(_to_world_2d(polygon, x, z - 0.01, facing), part_color, TrainId.RIDER)
                   for polygon, part_color in rider]

    def draw(canvas: Canvas) -> None:
        canvas.fill_parts([(shadow, (25, 25, 28), None)])
        for world, part_color in rings:
            canvas.fill_world(world, part_color, vehicle_label, vehicle_id, convex=False)
        canvas.fill_parts(vehicle_parts, vehicle_id)
        canvas.fill_parts(rider_parts, rider_id)
    return Drawable(z, draw)


def sample_things(rng: np.random.Generator, layout: StreetLayout, counter: InstanceCounter,
                  sun: np.ndarray) -> List[Drawable]:
    """Traffic in the lanes, parked cars, pedestrians and riders."""
    things: List[Drawable] = []
    lanes = layout.lane_centers()
    for k, lane_x in enumerate(lanes):
        oncoming = layout.two_way and k < layout.lanes_left
        z = rng.uniform(7.0, 25.0) if lane_x == 0 else rng.uniform(2.0, 20.0)
        while z < min(layout.street_end - 10.0, 90.0):
            if rng.random() < 0.75:
                heading = (math.pi if oncoming else 0.0) + rng.normal(0.0, 0.03)
                pose = Pose(lane_x + rng.normal(0.0, 0.25), z, heading)
                kind = rng.random()
                if kind < 0.72:
                    things.append(make_car(rng, counter, pose, sun))
                elif kind < 0.86:
                    things.append(make_truck(rng, counter, pose, sun))
                else:
                    things.append(make_bus(rng, counter, pose, sun))
            z += rng.uniform(9.0, 30.0)
    if layout.tram_rails and rng.random() < 0.75:
        heading = math.pi if rng.random() < 0.4 else 0.0
        things.append(make_tram(rng, counter, Pose(0.0, rng.uniform(14.0, 70.0), heading), sun))
    for sign, parking in ((-1, layout.parking_left), (1, layout.parking_right)):
        if not parking:
            continue
        x = sign * (abs(layout.kerb(sign)) - 1.15)
        z = rng.uniform(-2.0, 8.0)
        while z < min(layout.street_end - 5.0, 70.0):
            if rng.random() < 0.7:
                pose = Pose(x, z, (0.0 if rng.random() < 0.8 else math.pi)
                            + rng.normal(0.0, 0.05))
                if rng.random() < 0.9:
                    things.append(make_car(rng, counter, pose, sun))
                else:
                    things.append(make_truck(rng, counter, pose, sun))
            z += rng.uniform(5.0, 9.0)
    if rng.random() < 0.2:
        lo, hi = layout.road_left + 1.0, layout.road_right - 1.0
        things.append(make_car(rng, counter, Pose(rng.uniform(lo, hi), rng.uniform(18.0, 50.0),
                                                  pick(rng, (0.5, -0.5)) * math.pi), sun))
    for _ in range(int(rng.integers(1, 10))):
        sign = pick(rng, (-1, 1))
        inner, outer = layout.sidewalk_span(sign)
        things.append(make_person(rng, counter, sign * rng.uniform(inner + 0.3, outer - 0.2),
                                  rng.uniform(3.0, 60.0)))
    if rng.random() < 0.3:
        start = rng.uniform(8.0, 30.0)
        for _ in range(int(rng.integers(1, 5))):
            things.append(make_person(rng, counter, rng.uniform(layout.road_left,
                                                                layout.road_right),
                                      start + rng.uniform(0.0, 3.0)))
    for _ in range(int(rng.integers(0, 4))):
        side_view = rng.random() < 0.35
        if side_view:
            x = rng.uniform(layout.road_left, layout.road_right)
        else:
            sign = pick(rng, (-1, 1))
            x = sign * (abs(layout.kerb(sign)) - rng.uniform(0.6, 1.4))
        things.append(make_rider(rng, counter, x, rng.uniform(5.0, 50.0), side_view))
    return things
