"""Street furniture and trees: poles, street lamps, traffic lights, traffic signs, trees.

Each ``make_*`` function samples one object and returns a :class:`Drawable` so that props and
thing instances can be painted together, far to near.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List

import numpy as np

from .canvas import Canvas, circle_points, ellipse_points
from .layout import jitter, pick, StreetLayout, TrainId

_X = (1.0, 0.0, 0.0)
_Y = (0.0, 1.0, 0.0)
_VEGETATION_COLORS = ((52, 92, 38), (70, 108, 44), (40, 75, 35), (88, 118, 50), (96, 100, 40))
_POLE_COLORS = ((120, 122, 124), (90, 92, 96), (150, 150, 145), (60, 70, 64))


@dataclass
class Drawable:
    """Something painted in depth order: ``draw(canvas)`` paints it at camera ``depth``."""

    depth: float
    draw: Callable[[Canvas], None]


def _billboard(x: float, z: float, left: float, right: float, bottom: float,
               top: float) -> np.ndarray:
    """(4, 3) world corners of an upright rectangle facing the camera at depth ``z``."""
    return np.array([[x + left, bottom, z], [x + left, top, z], [x + right, top, z],
                     [x + right, bottom, z]])


def _draw_pole(canvas: Canvas, x: float, z: float, radius: float, height: float,
               color) -> None:
    canvas.fill_world([_billboard(x, z, -radius, radius, 0.0, height)], color, TrainId.POLE)


def make_street_lamp(rng: np.random.Generator, x: float, z: float, sign: int) -> Drawable:
    height = rng.uniform(5.5, 9.0)
    radius = rng.uniform(0.07, 0.14)
    arm = -sign * rng.uniform(0.8, 2.6)
    color = jitter(rng, pick(rng, _POLE_COLORS), 12)

    lo, hi = sorted((0.0, arm))
    parts = [(_billboard(x, z, -radius, radius, 0.0, height), color, TrainId.POLE),
             (_billboard(x, z, lo, hi, height - 0.1, height), color, TrainId.POLE),
             (_billboard(x + arm, z, -0.35, 0.35, height - 0.3, height), (200, 200, 190),
              TrainId.POLE)]
    return Drawable(z, lambda canvas: canvas.fill_parts(parts))


def make_pole(rng: np.random.Generator, x: float, z: float) -> Drawable:
    height = rng.uniform(1.0, 4.0)
    radius = rng.uniform(0.04, 0.1)
    color = jitter(rng, pick(rng, _POLE_COLORS), 20)
    return Drawable(z, lambda canvas: _draw_pole(canvas, x, z, radius, height, color))


def _draw_light_head(canvas: Canvas, rng: np.random.Generator, x: float, y: float,
                     z: float, housing) -> None:
    """A three-lamp traffic light housing with its bottom at height ``y``."""
    width, height = 0.34, 0.95
    canvas.fill_world([_billboard(x, z, -width / 2, width / 2, y, y + height)], housing,
                      TrainId.TRAFFIC_LIGHT)
    lit = int(rng.integers(3))
    for k, lamp in enumerate(((255, 60, 40), (255, 190, 40), (60, 255, 140))):
        center = (x, y + height * (0.8 - 0.3 * k), z - 0.02)
        color = lamp if k == lit else (40, 40, 40)
        canvas.fill_world([circle_points(center, 0.1, _X, _Y, 10)], color)


def make_traffic_light(rng: np.random.Generator, x: float, z: float, sign: int) -> Drawable:
    overhead = rng.random() < 0.35
    pole_height = rng.uniform(5.5, 6.5) if overhead else rng.uniform(2.4, 3.6)
    reach = -sign * rng.uniform(2.5, 5.0)
    pole_color = jitter(rng, pick(rng, _POLE_COLORS), 12)
    housing = jitter(rng, pick(rng, ((35, 35, 35), (50, 55, 50), (180, 150, 40))), 8)
    seed = int(rng.integers(1 << 31))

    def draw(canvas: Canvas) -> None:
        local = np.random.default_rng(seed)
        _draw_pole(canvas, x, z, 0.1, pole_height, pole_color)
        if overhead:
            lo, hi = sorted((0.0, reach))
            canvas.fill_world([_billboard(x, z, lo, hi, pole_height - 0.15, pole_height)],
                              pole_color, TrainId.POLE)
            _draw_light_head(canvas, local, x + reach, pole_height - 1.1, z, housing)
            _draw_light_head(canvas, local, x + 0.25 * -sign, 2.3, z, housing)
        else:
            _draw_light_head(canvas, local, x, pole_height - 0.2, z, housing)
    return Drawable(z, draw)


def _sign_plate(rng: np.random.Generator, center, size: float):
    """(outline (N, 3), inner (M, 3) or None, outer colour, inner colour) of a sign plate."""
    kind = int(rng.integers(6))
    cx, cy, cz = center
    r = size / 2
    if kind == 0:  # prohibition: red ring, white disc
        return (circle_points(center, r, _X, _Y, 16), circle_points(center, r * 0.72, _X, _Y, 16),
                (200, 30, 35), (235, 235, 230))
    if kind == 1:  # mandatory: blue disc, white arrow
        arrow = np.array([[cx - r * 0.12, cy - r * 0.5, cz], [cx - r * 0.12, cy + r * 0.1, cz],
                          [cx - r * 0.4, cy + r * 0.1, cz], [cx, cy + r * 0.55, cz],
                          [cx + r * 0.4, cy + r * 0.1, cz], [cx + r * 0.12, cy + r * 0.1, cz],
                          [cx + r * 0.12, cy - r * 0.5, cz]])
        return circle_points(center, r, _X, _Y, 16), arrow, (30, 80, 170), (235, 235, 235)
    if kind == 2:  # warning: red-bordered triangle
        outer = np.array([[cx - r, cy - r * 0.8, cz], [cx + r, cy - r * 0.8, cz],
                          [cx, cy + r, cz]])
        inner = np.array([[cx - r * 0.62, cy - r * 0.58, cz], [cx + r * 0.62, cy - r * 0.58, cz],
                          [cx, cy + r * 0.5, cz]])
        return outer, inner, (200, 30, 35), (240, 235, 225)
    if kind == 3:  # stop: red octagon
        outer = circle_points(center, r, _X, _Y, 8)
        return outer, None, (195, 25, 30), None
    if kind == 4:  # information: blue square with a white square
        outer = _billboard(cx, cz, -r, r, cy - r, cy + r)
        inner = _billboard(cx, cz, -r * 0.4, r * 0.4, cy - r * 0.5, cy + r * 0.3)
        return outer, inner, (25, 75, 165), (240, 240, 240)
    # direction board: wide green or blue rectangle with a white band
    outer = _billboard(cx, cz, -r * 1.6, r * 1.6, cy - r * 0.6, cy + r * 0.6)
    inner = _billboard(cx, cz, -r * 1.2, r * 0.9, cy - r * 0.12, cy + r * 0.12)
    return outer, inner, pick(rng, ((20, 110, 60), (25, 75, 165))), (235, 235, 235)


def make_traffic_sign(rng: np.random.Generator, x: float, z: float) -> Drawable:
    pole_height = rng.uniform(2.2, 3.2)
    size = rng.uniform(0.55, 0.9)
    pole_color = jitter(rng, pick(rng, _POLE_COLORS), 12)
    plates = [_sign_plate(rng, (x, pole_height - size / 2, z - 0.05), size)]
    if rng.random() < 0.3:
        plates.append(_sign_plate(rng, (x, pole_height - size * 1.6, z - 0.05), size * 0.8))

    parts = [(_billboard(x, z, -0.045, 0.045, 0.0, pole_height), pole_color, TrainId.POLE)]
    for outer, inner, outer_color, inner_color in plates:
        parts.append((outer, outer_color, TrainId.TRAFFIC_SIGN))
        if inner is not None:
            parts.append((inner, inner_color, None))
    return Drawable(z, lambda canvas: canvas.fill_parts(parts))


def make_tree(rng: np.random.Generator, x: float, z: float) -> Drawable:
    trunk_height = rng.uniform(1.5, 4.0)
    trunk_radius = rng.uniform(0.1, 0.22)
    crown = rng.uniform(1.2, 3.2)
    base = jitter(rng, pick(rng, _VEGETATION_COLORS), 14)
    blobs = []
    for _ in range(int(rng.integers(3, 7))):
        offset = rng.normal(0.0, crown * 0.45, 2)
        radius = crown * rng.uniform(0.45, 0.8)
        shade = rng.uniform(0.7, 1.2)
        blobs.append((x + offset[0], trunk_height + crown + offset[1] * 0.8, radius,
                      radius * rng.uniform(0.8, 1.2), [min(c * shade, 255) for c in base]))
    trunk_color = jitter(rng, (88, 72, 58), 14)
    parts = [(_billboard(x, z, -trunk_radius, trunk_radius, 0.0, trunk_height + crown),
              trunk_color, TrainId.VEGETATION)]
    for bx, by, rx, ry, color in sorted(blobs, key=lambda b: sum(b[4])):
        parts.append((ellipse_points((bx, by, z), rx, ry, _X, _Y, 12), color,
                      TrainId.VEGETATION))
    return Drawable(z, lambda canvas: canvas.fill_parts(parts))


def sample_props(rng: np.random.Generator, layout: StreetLayout) -> List[Drawable]:
    """Lamps, poles, signs, traffic lights and street trees along both kerbs."""
    props: List[Drawable] = []
    for sign in (-1, 1):
        kerb = abs(layout.kerb(sign))
        inner, outer = layout.sidewalk_span(sign)
        if rng.random() < 0.7:
            z = rng.uniform(-5.0, 20.0)
            step = rng.uniform(18.0, 35.0)
            while z < layout.street_end * 0.9:
                props.append(make_street_lamp(rng, sign * (kerb + 0.45), z, sign))
                z += step
        if rng.random() < 0.55:
            tree_x = sign * (kerb + layout.side(sign).grass_inner * 0.5 + rng.uniform(0.6, 1.2))
            z = rng.uniform(0.0, 10.0)
            step = rng.uniform(7.0, 15.0)
            while z < layout.street_end * 0.85:
                props.append(make_tree(rng, tree_x, z))
                z += step * rng.uniform(0.8, 1.25)
        for _ in range(int(rng.integers(0, 3))):
            props.append(make_traffic_sign(rng, sign * (kerb + rng.uniform(0.3, 0.8)),
                                           rng.uniform(4.0, 60.0)))
        for _ in range(int(rng.integers(0, 3))):
            props.append(make_pole(rng, sign * rng.uniform(inner, outer), rng.uniform(3.0, 50.0)))
    if rng.random() < 0.55:
        crossing = rng.uniform(14.0, 60.0)
        for sign in (-1, 1):
            if rng.random() < 0.8:
                props.append(make_traffic_light(
                    rng, sign * (abs(layout.kerb(sign)) + 0.5), crossing, sign))
    return props


def sample_park_trees(rng: np.random.Generator, layout: StreetLayout) -> List[Drawable]:
    """Trees standing behind the sidewalk boundary on open (unbuilt) sides."""
    trees: List[Drawable] = []
    for sign in (-1, 1):
        side = layout.side(sign)
        if side.built:
            continue
        near = layout.sidewalk_span(sign)[1] + side.grass_outer + 1.5
        far = layout.building_line(sign) - 1.0
        for _ in range(int(rng.integers(4, 14))):
            trees.append(make_tree(rng, sign * rng.uniform(near, max(far, near + 1.0)),
                                   rng.uniform(0.0, layout.street_end * 0.8)))
    return trees
