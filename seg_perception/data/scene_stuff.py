"""Background of a synthetic street: sky, ground (road, sidewalks, grass), buildings, the end of
the street and the walls, fences and hedges along the sidewalks.

Ground pixels are computed per pixel from their ground-plane coordinates (vectorised); the
rest are planar polygons drawn far to near.
"""

from __future__ import annotations

import math
from typing import List

import cv2
import numpy as np

from .scene_canvas import Canvas
from .scene_layout import Color, jitter, pick, StreetLayout, TrainId

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
    """Fill the whole frame with a sky gradient and clouds, labelled sky."""
    cam = canvas.camera
    h, w = cam.height, cam.width
    span = max(cam.horizon_row, h * 0.25)
    ramp = np.clip(np.arange(h, dtype=np.float32) / span, 0.0, 1.0) ** 0.7
    top = np.asarray(zenith, dtype=np.float32)
    bottom = np.asarray(horizon, dtype=np.float32)
    gradient = top[None, :] * (1.0 - ramp[:, None]) + bottom[None, :] * ramp[:, None]
    canvas.image[:] = gradient[:, None, :]
    coarse = rng.standard_normal((max(h // 24, 2), max(w // 24, 2))).astype(np.float32)
    clouds = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    cover = rng.uniform(-0.2, 1.2)
    amount = np.clip((clouds - cover) * 0.8, 0.0, 0.85)[:, :, None]
    cloud_color = np.float32(rng.uniform(200, 245))
    canvas.image += (cloud_color - canvas.image) * amount
    canvas.semantic[:] = TrainId.SKY


def _segment_table(layout: StreetLayout, beyond_class: List[int]):
    """Ground cross-section as sorted X edges and the train id of each interval."""
    edges: List[float] = []
    classes: List[int] = [beyond_class[0]]
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
            classes += [TrainId.TERRAIN, TrainId.SIDEWALK, TrainId.TERRAIN, beyond_class[1]]
    return np.asarray(edges, dtype=np.float32), np.asarray(classes, dtype=np.uint8)


def draw_ground(canvas: Canvas, rng: np.random.Generator, layout: StreetLayout) -> None:
    """Road, lane markings, sidewalks, kerbs and grass, per pixel below the horizon."""
    cam = canvas.camera
    row0 = max(int(math.floor(cam.horizon_row)) + 1, 0)
    if row0 >= cam.height:
        return
    x, z = cam.ground_coordinates(row0)
    beyond = [TrainId.TERRAIN if rng.random() < 0.6 else TrainId.SIDEWALK for _ in range(2)]
    edges, classes = _segment_table(layout, beyond)
    index = np.searchsorted(edges, x)
    label = classes[index]
    # The kerb stones belong to the sidewalk.
    kerb_width = rng.uniform(0.12, 0.25)
    kerb = (((x < layout.road_left) & (x > layout.road_left - kerb_width))
            | ((x > layout.road_right) & (x < layout.road_right + kerb_width)))
    label[kerb] = TrainId.SIDEWALK

    colors = np.zeros((20, 3), dtype=np.float32)
    colors[TrainId.ROAD] = jitter(rng, pick(rng, _ROAD_COLORS), 10)
    colors[TrainId.SIDEWALK] = jitter(rng, pick(rng, _SIDEWALK_COLORS), 12)
    colors[TrainId.TERRAIN] = jitter(rng, pick(rng, _TERRAIN_COLORS), 14)
    image = colors[label]
    shade = np.ones(x.shape, dtype=np.float32)
    is_road = label == TrainId.ROAD

    # Paving joints on sidewalks, faded out where they would alias.
    tile = rng.uniform(0.3, 0.8)
    joints = (((x / tile) % 1.0 < 0.07) | ((z / tile) % 1.0 < 0.07)) & (z < 30.0)
    shade[joints & (label == TrainId.SIDEWALK)] = 0.8
    shade[kerb] = 1.25

    paint = _lane_markings(rng, layout, x, z) & is_road
    image[paint] = jitter(rng, (225, 225, 215), 12)
    if layout.tram_rails:
        rails = (np.abs(np.abs(x) - 0.72) < 0.05) & is_road
        image[rails] = (165, 162, 158)
    if layout.sunny:
        _cast_building_shadows(rng, layout, x, z, shade)
    image *= shade[:, :, None]
    haze = (1.0 - np.exp(-np.maximum(z, 0.0) / canvas.visibility))[:, :, None]
    image += (canvas.haze_color[None, None, :] - image) * haze
    canvas.image[row0:] = image
    canvas.semantic[row0:] = label


def _lane_markings(rng: np.random.Generator, layout: StreetLayout, x: np.ndarray,
                   z: np.ndarray) -> np.ndarray:
    """Boolean mask of painted lane lines and an optional zebra crossing."""
    lanes = layout.lanes_left + layout.lanes_right + 1
    left_edge = -(layout.lanes_left + 0.5) * layout.lane_width
    q = (x - left_edge) / layout.lane_width
    line = np.rint(q)
    near_line = np.abs(q - line) * layout.lane_width < rng.uniform(0.06, 0.1)
    dash_period = rng.uniform(9.0, 15.0)
    dashed = (z / dash_period) % 1.0 < rng.uniform(0.2, 0.45)
    inner = (line > 0) & (line < lanes)
    solid = (line == 0) | (line == lanes)
    if layout.two_way:
        solid |= line == layout.lanes_left
    mask = near_line & ((inner & dashed) | solid)
    if rng.random() < 0.3:
        start = rng.uniform(8.0, 40.0)
        zebra = (z > start) & (z < start + rng.uniform(3.0, 5.0))
        mask |= zebra & ((x / 1.0) % 1.0 < 0.5)
    return mask


def _cast_building_shadows(rng: np.random.Generator, layout: StreetLayout, x: np.ndarray,
                           z: np.ndarray, shade: np.ndarray) -> None:
    """Darken the ground in the shadow of the buildings on the sun's side."""
    sign = -1 if layout.sun_from_left else 1
    if not layout.side(sign).built:
        return
    base = rng.uniform(2.0, 12.0)
    steps = np.where(np.sin(z * rng.uniform(0.08, 0.2) + rng.uniform(0, 6.3)) > 0, 1.0, 0.55)
    edge = sign * (layout.building_line(sign) - base * steps)
    in_shadow = (x < edge) if sign < 0 else (x > edge)
    shade[in_shadow] *= np.float32(rng.uniform(0.45, 0.65))


def _window_quads(xb: float, sign: int, z0: float, z1: float, y0: float, y1: float,
                  spacing: float, width: float, floor: float, height: float) -> np.ndarray:
    """(N, 4, 3) world corners of a grid of windows on the facade plane X = ``xb``."""
    columns = np.arange(z0 + spacing * 0.5, z1 - spacing * 0.4, spacing)
    floors = np.arange(y0 + (floor - height) * 0.5, y1 - height, floor)
    if len(columns) == 0 or len(floors) == 0:
        return np.zeros((0, 4, 3))
    zc, yc = np.meshgrid(columns, floors)
    zc, yc = zc.ravel(), yc.ravel()
    x = np.full_like(zc, xb - sign * 0.03)
    corners = [(zc - width / 2, yc), (zc + width / 2, yc), (zc + width / 2, yc + height),
               (zc - width / 2, yc + height)]
    return np.stack([np.stack([x, cy, cz], axis=1) for cz, cy in corners], axis=1)


def _draw_quads(canvas: Canvas, quads: np.ndarray, colors, rng: np.random.Generator,
                depth_hint: float) -> None:
    """Draw image-only quads, each in one of ``colors`` chosen at random."""
    if len(quads) == 0:
        return
    uv, depth = canvas.camera.project(quads.reshape(-1, 3))
    uv = uv.reshape(-1, 4, 2)
    visible = depth.reshape(-1, 4).min(axis=1) > 0.5
    groups = rng.integers(len(colors), size=len(quads))
    for group, color in enumerate(colors):
        chosen = uv[visible & (groups == group)]
        if len(chosen):
            canvas.fill_pixels(list(chosen), canvas.hazed(color, depth_hint))


def draw_building(canvas: Canvas, rng: np.random.Generator, sign: int, xb: float, z0: float,
                  z1: float, height: float, sunny: bool, lit: bool) -> None:
    """One building: front end face, facade, cornice, windows, shop front."""
    base = jitter(rng, pick(rng, _FACADE_COLORS), 16)
    facade_shade = 1.0 if lit or not sunny else 0.62
    end_shade = 0.8 if sunny else 0.9
    depth = abs(xb) + max(z0, 0.0) * 0.5 + max(z1, 0.0) * 0.5
    outward = xb + sign * 14.0
    end_face = np.array([[xb, 0, z0], [xb, height, z0], [outward, height, z0], [outward, 0, z0]])
    canvas.fill_world([end_face], [c * end_shade for c in base], TrainId.BUILDING)
    facade = np.array([[xb, 0, z0], [xb, height, z0], [xb, height, z1], [xb, 0, z1]])
    facade_color = [c * facade_shade for c in base]
    canvas.fill_world([facade], facade_color, TrainId.BUILDING)
    cornice = np.array([[xb, height - 0.5, z0], [xb, height, z0], [xb, height, z1],
                        [xb, height - 0.5, z1]])
    canvas.fill_world([cornice], jitter(rng, [c * 0.8 for c in facade_color], 10))

    ground_floor = rng.uniform(3.0, 4.5)
    spacing = rng.uniform(2.2, 4.0)
    floor = rng.uniform(2.8, 3.6)
    width = spacing * rng.uniform(0.35, 0.65)
    window_height = floor * rng.uniform(0.4, 0.62)
    glass = [jitter(rng, (48, 58, 74), 12), jitter(rng, (96, 116, 140), 20),
             jitter(rng, (30, 34, 40), 8)]
    glass = [[c * facade_shade for c in g] for g in glass]
    if rng.random() < 0.6:
        frame = jitter(rng, pick(rng, ((235, 232, 225), (60, 58, 56))), 10)
        frames = _window_quads(xb + sign * 0.01, sign, z0, z1, ground_floor - 0.12,
                               height - 0.4, spacing, width + 0.24, floor, window_height + 0.24)
        _draw_quads(canvas, frames, [[c * facade_shade for c in frame]], rng, depth)
    windows = _window_quads(xb, sign, z0, z1, ground_floor, height - 0.6, spacing, width,
                            floor, window_height)
    _draw_quads(canvas, windows, glass, rng, depth)
    if rng.random() < 0.55:
        shop = _window_quads(xb, sign, z0, z1, 0.3, ground_floor - 0.2, spacing * 1.6,
                             spacing * 1.3, ground_floor - 0.4, ground_floor - 0.9)
        _draw_quads(canvas, shop, glass[:2], rng, depth)


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
        x = -90.0
        while x < 90.0:
            width = rng.uniform(10.0, 30.0)
            height = rng.uniform(8.0, 30.0)
            face = np.array([[x, 0, z], [x, height, z], [x + width, height, z],
                             [x + width, 0, z]])
            color = jitter(rng, pick(rng, _FACADE_COLORS), 16)
            canvas.fill_world([face], color, TrainId.BUILDING)
            x += width
        return
    xs = np.arange(-120.0, 121.0, 2.5)
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
    _label_polygon(canvas, uv, TrainId.FENCE, blend=(canvas.hazed(color, depth.mean()), 0.45)
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


def _label_polygon(canvas: Canvas, uv: np.ndarray, label: int, blend=None) -> None:
    """Label a pixel polygon without painting it, optionally blending a colour over it."""
    points = np.round(np.clip(uv, -1e5, 1e5) * 16).astype(np.int32)
    if blend is None:
        cv2.fillConvexPoly(canvas.semantic, points, int(label), cv2.LINE_8, 4)
        cv2.fillConvexPoly(canvas.instance, points, 0, cv2.LINE_8, 4)
        return
    h, w = canvas.semantic.shape
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
    color, alpha = blend
    region = canvas.image[row0:row1, col0:col1]
    region[inside] += (np.asarray(color, dtype=np.float32) - region[inside]) * alpha
    canvas.semantic[row0:row1, col0:col1][inside] = label
    canvas.instance[row0:row1, col0:col1][inside] = 0


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
