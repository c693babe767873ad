"""Background of a synthetic street: sky, ground (road, sidewalks, grass), buildings, the end of
the street and the walls, fences and hedges along the sidewalks.

Ground pixels are computed per pixel from their ground-plane coordinates (vectorised); the
rest are planar polygons drawn far to near.
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .canvas import Canvas
from .layout import Color, jitter, pick, StreetLayout, TrainId

_FACADE_COLORS = (
    (200, 188, 165), (170, 160, 150), (150, 82, 62), (222, 216, 205), (120, 120, 126),
    (192, 170, 122), (158, 174, 186), (104, 94, 88), (210, 180, 150), (140, 110, 90),
)
_SIDEWALK_COLORS = ((150, 148, 145), (175, 170, 160), (160, 130, 120), (125, 125, 128))
_ROAD_COLORS = ((78, 78, 82), (96, 95, 98), (62, 63, 66), (110, 108, 104))
_TERRAIN_COLORS = ((112, 150, 62), (140, 160, 80), (128, 128, 78), (96, 132, 60))
_VEGETATION_COLORS = ((52, 92, 38), (70, 108, 44), (40, 75, 35), (88, 118, 50))
_WALL_COLORS = ((160, 158, 152), (140, 100, 80), (185, 180, 170), (110, 108, 104))
_FENCE_COLORS = ((80, 84, 80), (150, 150, 145), (110, 86, 60), (40, 60, 45))


def sky_colors(rng: np.random.Generator, sunny: bool):
    """(zenith, horizon) RGB colours of the sky."""
    if sunny:
        zenith = jitter(rng, (62, 118, 196), 18)
        horizon = jitter(rng, (176, 200, 224), 14)
    else:
        grey = rng.uniform(165, 225)
        zenith = jitter(rng, (grey - 12, grey - 6, grey + 4), 8)
        horizon = jitter(rng, (grey + 12, grey + 14, grey + 18), 6)
    return zenith, horizon


def draw_sky(canvas: Canvas, rng: np.random.Generator, zenith: Color, horizon: Color) -> None:
    """Fill the whole frame with a sky gradient and clouds, labelled sky.

    The sky is smooth, so it is computed at 1/8 resolution and upsampled.
    """
    cam = canvas.camera
    h, w = cam.height, cam.width
    small_h, small_w = max(h // 8, 4), max(w // 8, 4)
    span = max(cam.horizon_row, h * 0.25) / h * small_h
    ramp = np.clip(np.arange(small_h, dtype=np.float32) / span, 0.0, 1.0) ** 0.7
    top = np.asarray(zenith, dtype=np.float32)
    bottom = np.asarray(horizon, dtype=np.float32)
    gradient = top[None, :] * (1.0 - ramp[:, None]) + bottom[None, :] * ramp[:, None]
    coarse = rng.standard_normal((max(small_h // 3, 2), max(small_w // 3, 2)))
    clouds = cv2.resize(coarse.astype(np.float32), (small_w, small_h),
                        interpolation=cv2.INTER_CUBIC)
    cover = rng.uniform(-0.2, 1.2)
    amount = np.clip((clouds - cover) * 0.8, 0.0, 0.85)[:, :, None]
    cloud_color = np.float32(rng.uniform(200, 245))
    small = gradient[:, None, :] + (cloud_color - gradient[:, None, :]) * amount
    # Below the horizon the ground covers the sky.
    rows = int(min(max(math.ceil(cam.horizon_row) + 2, 1), h))
    sky = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    canvas.image[:rows] = sky[:rows]
    canvas.label_rows(rows, TrainId.SKY)


#: Depth bands (metres) the ground is drawn in, so each band gets its own haze.
_BANDS = (0.0, 4.0, 8.0, 15.0, 28.0, 50.0, 90.0, 160.0, 300.0, 3000.0)
_FAR_SIDE = 400.0


def _strips(layout: StreetLayout, beyond: Sequence[int]) -> List[Tuple[float, float, int]]:
    """Ground cross-section, left to right, as (x0, x1, train id) strips."""
    edges = [-np.inf]
    classes = [beyond[0]]
    for sign in (-1, 1):
        side = layout.side(sign)
        inner, outer = layout.sidewalk_span(sign)
        kerb = abs(layout.kerb(sign))
        grass_end = outer + side.grass_outer
        if sign < 0:
            edges += [-grass_end, -outer, -inner, -kerb]
            classes += [TrainId.TERRAIN, TrainId.SIDEWALK, TrainId.TERRAIN, TrainId.ROAD]
        else:
            edges += [kerb, inner, outer, grass_end]
            classes += [TrainId.TERRAIN, TrainId.SIDEWALK, TrainId.TERRAIN, beyond[1]]
    edges.append(np.inf)
    return [(edges[i], edges[i + 1], classes[i]) for i in range(len(classes))
            if edges[i + 1] > edges[i] + 1e-3]


def _ground_quad(x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    return np.array([[x0, 0.0, z0], [x1, 0.0, z0], [x1, 0.0, z1], [x0, 0.0, z1]])


def draw_ground(canvas: Canvas, rng: np.random.Generator, layout: StreetLayout) -> None:
    """Road, lane markings, kerbs, sidewalks with paving joints, grass; cast shadows."""
    beyond = [TrainId.TERRAIN if rng.random() < 0.6 else TrainId.SIDEWALK for _ in range(2)]
    strips = _strips(layout, beyond)
    colors = {TrainId.ROAD: jitter(rng, pick(rng, _ROAD_COLORS), 10),
              TrainId.SIDEWALK: jitter(rng, pick(rng, _SIDEWALK_COLORS), 12),
              TrainId.TERRAIN: jitter(rng, pick(rng, _TERRAIN_COLORS), 14)}
    kerb_width = rng.uniform(0.12, 0.25)
    kerb_color = [min(c * 1.25, 255.0) for c in colors[TrainId.SIDEWALK]]
    paint = jitter(rng, (225, 225, 215), 12)
    markings = _lane_markings(rng, layout)
    parts = []
    for z0, z1 in zip(_BANDS[:-1], _BANDS[1:]):
        reach = max(_FAR_SIDE, 2.0 * z1)  # the outer strips must reach the image edges
        band = [(_ground_quad(max(a, -reach), min(b, reach), z0, z1), colors[c], c)
                for a, b, c in strips]
        band += [(_ground_quad(layout.road_left - kerb_width, layout.road_left, z0, z1),
                  kerb_color, TrainId.SIDEWALK),
                 (_ground_quad(layout.road_right, layout.road_right + kerb_width, z0, z1),
                  kerb_color, TrainId.SIDEWALK)]
        band += [(q, paint, None) for q in markings if z0 <= q[0, 2] < z1]
        if layout.tram_rails:
            band += [(_ground_quad(s * 0.72 - 0.05, s * 0.72 + 0.05, z0, z1),
                      (165, 162, 158), None) for s in (-1, 1)]
        parts += band
    canvas.fill_parts(parts, haze_each=True)
    _paving_joints(canvas, rng, layout, colors[TrainId.SIDEWALK])
    if layout.sunny:
        _cast_building_shadows(canvas, rng, layout)


def _paving_joints(canvas: Canvas, rng: np.random.Generator, layout: StreetLayout,
                   color) -> None:
    """Thin darker joints between paving slabs on the near part of both sidewalks."""
    tile = rng.uniform(0.35, 0.9)
    joint = 0.04
    quads = []
    for sign in (-1, 1):
        inner, outer = layout.sidewalk_span(sign)
        x0, x1 = sorted((sign * inner, sign * outer))
        for z in np.arange(1.0, 25.0, tile):
            quads.append(_ground_quad(x0, x1, z, z + joint))
        for x in np.arange(x0 + tile, x1, tile):
            quads.append(_ground_quad(x, x + joint, 1.0, 25.0))
    canvas.fill_world(quads, [c * 0.78 for c in color], convex=False)


def _lane_markings(rng: np.random.Generator, layout: StreetLayout) -> List[np.ndarray]:
    """Painted lines (dashed between lanes, solid at the edges) and a zebra crossing, as
    ground quads (4, 3), long lines cut at the depth bands."""
    lanes = layout.lanes_left + layout.lanes_right + 1
    left_edge = -(layout.lanes_left + 0.5) * layout.lane_width
    half = rng.uniform(0.06, 0.1)
    period = rng.uniform(9.0, 15.0)
    dash = period * rng.uniform(0.2, 0.45)
    offset = rng.uniform(0.0, period)
    quads = []
    for line in range(lanes + 1):
        x = left_edge + line * layout.lane_width
        solid = line in (0, lanes) or (layout.two_way and line == layout.lanes_left)
        if solid:
            for z0, z1 in zip(_BANDS[:-1], _BANDS[1:]):
                if z0 < 400.0:
                    quads.append(_ground_quad(x - half, x + half, z0, z1))
        else:
            for z in np.arange(offset - period, 300.0, period):
                quads.append(_ground_quad(x - half, x + half, z, z + dash))
    if rng.random() < 0.3:
        start = rng.uniform(8.0, 40.0)
        depth = rng.uniform(3.0, 5.0)
        for x in np.arange(math.floor(layout.road_left), layout.road_right - 0.5, 1.0):
            quads.append(_ground_quad(x, x + 0.5, start, start + depth))
    return quads


def _cast_building_shadows(canvas: Canvas, rng: np.random.Generator,
                           layout: StreetLayout) -> None:
    """Darken the ground in the shadow of the buildings on the sun's side."""
    sign = -1 if layout.sun_from_left else 1
    if not layout.side(sign).built:
        return
    line = layout.building_line(sign)
    factor = rng.uniform(0.45, 0.65)
    z = -2.0
    polygons = []
    while z < layout.street_end:
        length = rng.uniform(8.0, 30.0)
        reach = rng.uniform(1.0, 14.0)
        x0, x1 = sorted((sign * (line - reach), sign * (line + 1.0)))
        polygons.append(_ground_quad(x0, x1, z, z + length))
        z += length
    canvas.shadow_world(polygons, factor)


def _window_quads(xb: float, sign: int, z0: float, z1: float, y0: float, y1: float,
                  spacing: float, width: float, floor: float, height: float) -> np.ndarray:
    """(N, 4, 3) world corners of a grid of windows on the facade plane X = ``xb``."""
    columns = np.arange(z0 + spacing * 0.5, z1 - spacing * 0.4, spacing)
    floors = np.arange(y0 + (floor - height) * 0.5, y1 - height, floor)
    if len(columns) == 0 or len(floors) == 0:
        return np.zeros((0, 4, 3))
    zc, yc = np.meshgrid(columns, floors)
    zc, yc = zc.ravel(), yc.ravel()
    corners = [(zc - width / 2, yc), (zc + width / 2, yc), (zc + width / 2, yc + height),
               (zc - width / 2, yc + height)]
    quads = np.empty((len(zc), 4, 3))
    quads[:, :, 0] = xb - sign * 0.03
    for corner, (cz, cy) in enumerate(corners):
        quads[:, corner, 1] = cy
        quads[:, corner, 2] = cz
    return quads


def _draw_quads(canvas: Canvas, groups, rng: np.random.Generator, depth_hint: float) -> None:
    """Draw image-only quads; ``groups`` is a list of ((N, 4, 3) quads, colours), each quad
    painted in one of its group's colours chosen at random. One projection for all."""
    groups = [(quads, colors) for quads, colors in groups if len(quads)]
    if not groups:
        return
    uv, depth = canvas.camera.project(np.concatenate([q for q, _ in groups]).reshape(-1, 3))
    uv = uv.reshape(-1, 4, 2)
    visible = depth.reshape(-1, 4).min(axis=1) > 0.5
    start = 0
    for quads, colors in groups:
        chosen_color = rng.integers(len(colors), size=len(quads))
        group_uv = uv[start:start + len(quads)]
        group_visible = visible[start:start + len(quads)]
        start += len(quads)
        for index, color in enumerate(colors):
            chosen = group_uv[group_visible & (chosen_color == index)]
            if len(chosen):
                canvas.fill_pixels(chosen, canvas.hazed(color, depth_hint))


def draw_building(canvas: Canvas, rng: np.random.Generator, sign: int, xb: float, z0: float,
                  z1: float, height: float, sunny: bool, lit: bool) -> None:
    """One building: front end face, facade, cornice, windows, shop front."""
    base = jitter(rng, pick(rng, _FACADE_COLORS), 16)
    facade_shade = 1.0 if lit or not sunny else 0.62
    end_shade = 0.8 if sunny else 0.9
    depth = abs(xb) + max(z0, 0.0) * 0.5 + max(z1, 0.0) * 0.5
    outward = xb + sign * 14.0
    end_face = np.array([[xb, 0, z0], [xb, height, z0], [outward, height, z0], [outward, 0, z0]])
    facade = np.array([[xb, 0, z0], [xb, height, z0], [xb, height, z1], [xb, 0, z1]])
    facade_color = [c * facade_shade for c in base]
    cornice = np.array([[xb, height - 0.5, z0], [xb, height, z0], [xb, height, z1],
                        [xb, height - 0.5, z1]])
    canvas.fill_parts([(end_face, [c * end_shade for c in base], TrainId.BUILDING),
                       (facade, facade_color, TrainId.BUILDING),
                       (cornice, jitter(rng, [c * 0.8 for c in facade_color], 10), None)])

    ground_floor = rng.uniform(3.0, 4.5)
    spacing = rng.uniform(2.2, 4.0)
    floor = rng.uniform(2.8, 3.6)
    width = spacing * rng.uniform(0.35, 0.65)
    window_height = floor * rng.uniform(0.4, 0.62)
    glass = [jitter(rng, (48, 58, 74), 12), jitter(rng, (96, 116, 140), 20),
             jitter(rng, (30, 34, 40), 8)]
    glass = [[c * facade_shade for c in g] for g in glass]
    groups = []
    if rng.random() < 0.6:
        frame = jitter(rng, pick(rng, ((235, 232, 225), (60, 58, 56))), 10)
        frames = _window_quads(xb + sign * 0.01, sign, z0, z1, ground_floor - 0.12,
                               height - 0.4, spacing, width + 0.24, floor, window_height + 0.24)
        groups.append((frames, [[c * facade_shade for c in frame]]))
    groups.append((_window_quads(xb, sign, z0, z1, ground_floor, height - 0.6, spacing, width,
                                 floor, window_height), glass))
    if rng.random() < 0.55:
        shop = _window_quads(xb, sign, z0, z1, 0.3, ground_floor - 0.2, spacing * 1.6,
                             spacing * 1.3, ground_floor - 0.4, ground_floor - 0.9)
        groups.append((shop, glass[:2]))
    _draw_quads(canvas, groups, rng, depth)


def draw_building_row(canvas: Canvas, rng: np.random.Generator, layout: StreetLayout,
                      sign: int, start: float) -> None:
    """Buildings along one side from ``start`` to the end of the street, drawn far to near."""
    side = layout.side(sign)
    line = layout.building_line(sign)
    lit = layout.sun_from_left == (sign > 0)
    blocks = []
    z = start
    while z < layout.street_end:
        length = rng.uniform(8.0, 32.0)
        gap = rng.uniform(2.0, 8.0) if rng.random() < 0.2 else 0.0
        blocks.append((z, min(z + length, layout.street_end), gap))
        z += length + gap
    tall = 1.0 if side.built else 0.7
    params = [(z0, z1, rng.uniform(6.0, 26.0) * tall, rng.uniform(0.0, 1.2)) for z0, z1, _
              in blocks]
    for z0, z1, height, extra in reversed(params):
        draw_building(canvas, rng, sign, sign * (line + extra), z0, z1, height,
                      layout.sunny, lit)


def draw_street_end(canvas: Canvas, rng: np.random.Generator, layout: StreetLayout) -> None:
    """What closes the street at ``street_end``: a cross row of buildings or a tree line."""
    z = layout.street_end
    if layout.left.built and layout.right.built and rng.random() < 0.7:
        x = -160.0
        while x < 160.0:
            width = rng.uniform(10.0, 30.0)
            height = rng.uniform(8.0, 30.0)
            face = np.array([[x, 0, z], [x, height, z], [x + width, height, z],
                             [x + width, 0, z]])
            color = jitter(rng, pick(rng, _FACADE_COLORS), 16)
            canvas.fill_world([face], color, TrainId.BUILDING)
            x += width
        return
    xs = np.arange(-200.0, 201.0, 2.5)
    tops = np.clip(rng.uniform(5.0, 14.0) + np.cumsum(rng.normal(0, 1.2, len(xs))), 3.0, 22.0)
    outline = np.concatenate([
        np.stack([xs, tops, np.full_like(xs, z)], axis=1),
        np.array([[xs[-1], 0.0, z], [xs[0], 0.0, z]])])
    canvas.fill_world([outline], jitter(rng, pick(rng, _VEGETATION_COLORS), 12),
                      TrainId.VEGETATION, convex=False)


def draw_boundary(canvas: Canvas, rng: np.random.Generator, layout: StreetLayout,
                  sign: int) -> None:
    """Walls, fences and hedges along the outer edge of one sidewalk, drawn far to near."""
    side = layout.side(sign)
    occupancy = 0.8 if not side.built else 0.3
    x_edge = sign * (layout.sidewalk_span(sign)[1] + side.grass_outer + 0.1)
    segments = []
    z = rng.uniform(-5.0, 5.0)
    while z < layout.street_end * 0.8:
        length = rng.uniform(6.0, 30.0)
        if rng.random() < occupancy:
            segments.append((z, z + length))
        z += length + rng.uniform(0.0, 6.0)
    for z0, z1 in reversed(segments):
        kind = rng.random()
        if kind < 0.42:
            _draw_fence(canvas, rng, x_edge, sign, z0, z1)
        elif kind < 0.75:
            _draw_wall(canvas, rng, x_edge, sign, z0, z1)
        else:
            _draw_hedge(canvas, rng, x_edge, sign, z0, z1)


def _draw_wall(canvas: Canvas, rng: np.random.Generator, x: float, sign: int, z0: float,
               z1: float) -> None:
    height = rng.uniform(0.7, 2.6)
    color = jitter(rng, pick(rng, _WALL_COLORS), 14)
    thickness = sign * rng.uniform(0.2, 0.4)
    end = np.array([[x, 0, z0], [x, height, z0], [x + thickness, height, z0],
                    [x + thickness, 0, z0]])
    canvas.fill_world([end], [c * 0.8 for c in color], TrainId.WALL)
    face = np.array([[x, 0, z0], [x, height, z0], [x, height, z1], [x, 0, z1]])
    canvas.fill_world([face], color, TrainId.WALL)
    coping = np.array([[x, height, z0], [x + thickness, height, z0], [x + thickness, height, z1],
                       [x, height, z1]])
    canvas.fill_world([coping], jitter(rng, [min(c * 1.2, 255) for c in color], 6),
                      TrainId.WALL)


def _draw_fence(canvas: Canvas, rng: np.random.Generator, x: float, sign: int, z0: float,
                z1: float) -> None:
    """A see-through fence: the label covers the whole panel, the image shows bars and mesh."""
    height = rng.uniform(0.9, 2.2)
    color = jitter(rng, pick(rng, _FENCE_COLORS), 12)
    panel = np.array([[x, 0, z0], [x, height, z0], [x, height, z1], [x, 0, z1]])
    uv, depth = canvas.camera.project(panel)
    if np.any(depth < 0.5):
        z0 = max(z0, 1.5)
        if z1 <= z0 + 1.0:
            return
        panel = np.array([[x, 0, z0], [x, height, z0], [x, height, z1], [x, 0, z1]])
        uv, depth = canvas.camera.project(panel)
    mesh = rng.random() < 0.5
    # Label the whole panel; the image gets a semi-transparent mesh or nothing between bars.
    canvas.label_polygon(uv, TrainId.FENCE, blend=(canvas.hazed(color, depth.mean()), 0.45)
                         if mesh else None)
    bar_spacing = rng.uniform(1.8, 2.6) if mesh else rng.uniform(0.1, 0.22)
    bar_width = 0.08 if mesh else bar_spacing * rng.uniform(0.3, 0.6)
    bars = []
    for zb in np.arange(z0, z1, bar_spacing):
        bars.append(np.array([[x, 0, zb], [x, height, zb], [x, height, zb + bar_width],
                              [x, 0, zb + bar_width]]))
    for y0 in (height - 0.08, height * 0.15):
        bars.append(np.array([[x, y0, z0], [x, y0 + 0.06, z0], [x, y0 + 0.06, z1],
                              [x, y0, z1]]))
    canvas.fill_world(bars, color, TrainId.FENCE)


def _draw_hedge(canvas: Canvas, rng: np.random.Generator, x: float, sign: int, z0: float,
                z1: float) -> None:
    height = rng.uniform(0.6, 1.8)
    depth = sign * rng.uniform(0.6, 1.5)
    color = jitter(rng, pick(rng, _VEGETATION_COLORS), 12)
    top = np.array([[x, height, z0], [x + depth, height, z0], [x + depth, height, z1],
                    [x, height, z1]])
    end = np.array([[x, 0, z0], [x, height, z0], [x + depth, height, z0], [x + depth, 0, z0]])
    face = np.array([[x, 0, z0], [x, height, z0], [x, height, z1], [x, 0, z1]])
    canvas.fill_world([end], [c * 0.75 for c in color], TrainId.VEGETATION)
    canvas.fill_world([top], [min(c * 1.15, 255) for c in color], TrainId.VEGETATION)
    canvas.fill_world([face], color, TrainId.VEGETATION)
