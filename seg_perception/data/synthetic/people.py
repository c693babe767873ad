"""People of the synthetic streets: pedestrians, and riders on bicycles and motorcycles.

Persons and two-wheelers are upright billboards made of a few flat parts (limbs as (4, 2)
quads, heads and wheels as ellipses, in metres), turned into world (N, 3) polygons at the
object's ground position. A rider is two instances, the rider and the two-wheeler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .canvas import Canvas, ellipse_points
from .instances import _pixel_height, InstanceCounter, Pose
from .layout import jitter, pick, TrainId
from .props import Drawable
from .vehicles import _CAR_COLORS

_CLOTHES = ((40, 40, 45), (60, 70, 110), (150, 30, 40), (200, 200, 195), (90, 80, 60),
            (30, 90, 60), (170, 120, 70), (110, 110, 115), (220, 160, 40), (80, 40, 90))
_SKIN = ((235, 195, 165), (200, 150, 110), (150, 100, 70), (95, 65, 45))


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
