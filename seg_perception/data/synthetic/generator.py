"""Procedural driving scenes with panoptic ground truth in Cityscapes train ids.

A street seen from a car: road with lane markings, kerbs and sidewalks, grass, buildings with
windows, walls, fences, hedges, trees, poles, street lamps, traffic lights and signs, sky; and
thing instances (cars, trucks, buses, trams, persons, riders on bicycles and motorcycles) on the
ground plane at depth-dependent scale, painted far to near so they occlude each other. Camera
height, pitch, yaw and focal length, the street layout, colours, sun or overcast light, haze,
texture, blur and sensor noise vary per frame.

Usage::

    generator = SceneGenerator(width=1024, height=512, seed=0)
    frame = generator.generate(17)      # same (seed, index) -> same frame, in any call order
    frame.image, frame.semantic, frame.instance, frame.panoptic, frame.instances
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import cv2
import numpy as np

from ...labels import VOID_ID
from .camera import Camera
from .canvas import Canvas, semantic_from_codes, SHADED_CODE_FLIP
from .instances import InstanceCounter
from .layout import sample_layout, StreetLayout, TrainId
from .props import sample_park_trees, sample_props
from .stuff import (
    draw_boundary,
    draw_building_row,
    draw_ground,
    draw_sky,
    draw_street_end,
    sky_colors,
)
from .things import sample_things

#: Panoptic id = train id * LABEL_DIVISOR + instance id.
LABEL_DIVISOR = 1000
MIN_SIZE = 32
MAX_SIZE = 8192

# Per train id (index 19..255 = void): strength of fine grain and of blotchy texture.
_FINE_TEXTURE = (0.05, 0.05, 0.04, 0.06, 0.03, 0.02, 0.02, 0.02, 0.2, 0.12, 0.008,
                 0.04, 0.04, 0.02, 0.03, 0.02, 0.02, 0.03, 0.03)
_BLOTCH_TEXTURE = (0.09, 0.07, 0.07, 0.09, 0.03, 0.03, 0.02, 0.01, 0.3, 0.18, 0.0,
                   0.03, 0.03, 0.02, 0.04, 0.03, 0.03, 0.02, 0.02)


@dataclass(frozen=True)
class InstanceInfo:
    """One thing instance of a frame.

    Attributes:
        id: Instance id in :attr:`SyntheticFrame.instance` (1..N).
        train_id: Cityscapes train id of the instance's class (11..18).
        bbox: Visible extent ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive.
        area: Visible pixels.
    """

    id: int
    train_id: int
    bbox: Tuple[int, int, int, int]
    area: int


@dataclass
class SyntheticFrame:
    """One generated frame.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        semantic: (H, W) uint8 Cityscapes train ids, 255 = void (the ego car's hood).
        instance: (H, W) int32, 0 on stuff and void, 1..N on thing pixels.
        instances: One entry per id in ``instance``, ordered by id.
        seed: Generator seed.
        index: Frame index.
    """

    image: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    instances: List[InstanceInfo] = field(default_factory=list)
    seed: int = 0
    index: int = 0

    @property
    def panoptic(self) -> np.ndarray:
        """(H, W) int32 ``semantic * 1000 + instance``; void pixels are ``255 * 1000``."""
        return self.semantic.astype(np.int32) * LABEL_DIVISOR + self.instance


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f'{name} must be an integer, got {type(value).__name__} {value!r}')
    if not low <= int(value) <= high:
        raise ValueError(f'{name} must be in {low}..{high}, got {value}')
    return int(value)


class SceneGenerator:
    """Deterministic generator of synthetic street frames.

    Args:
        width: Image width in pixels (32..8192).
        height: Image height in pixels (32..8192).
        seed: Non-negative seed; frame ``index`` of seed ``seed`` is always the same frame.
    """

    def __init__(self, width: int = 1024, height: int = 512, seed: int = 0) -> None:
        self.width = _check_int('width', width, MIN_SIZE, MAX_SIZE)
        self.height = _check_int('height', height, MIN_SIZE, MAX_SIZE)
        self.seed = _check_int('seed', seed, 0, 2 ** 63 - 1)

    def generate(self, index: int) -> SyntheticFrame:
        """Frame number ``index`` (>= 0), independent of which frames were made before."""
        index = _check_int('index', index, 0, 2 ** 63 - 1)
        rng = np.random.default_rng([self.seed, index])
        layout = sample_layout(rng)
        camera = self._sample_camera(rng)
        zenith, horizon = sky_colors(rng, layout.sunny)
        visibility = rng.uniform(180.0, 700.0) if layout.sunny else rng.uniform(90.0, 350.0)
        canvas = Canvas(camera, horizon, visibility, VOID_ID)
        counter = InstanceCounter()
        sun = _sun_direction(layout)

        draw_sky(canvas, rng, zenith, horizon)
        draw_ground(canvas, rng, layout)
        draw_street_end(canvas, rng, layout)
        for sign in (-1, 1):
            if layout.side(sign).built or rng.random() < 0.6:
                draw_building_row(canvas, rng, layout, sign, rng.uniform(-12.0, 2.0))
        for tree in sorted(sample_park_trees(rng, layout), key=lambda d: -d.depth):
            tree.draw(canvas)
        for sign in (-1, 1):
            draw_boundary(canvas, rng, layout, sign)
        drawables = sample_props(rng, layout) + sample_things(rng, layout, counter, sun)
        for drawable in sorted(drawables, key=lambda d: -d.depth):
            drawable.draw(canvas)
        if rng.random() < 0.4:
            _draw_ego_hood(canvas, rng)

        codes = canvas.texture_codes()
        image = _finish_image(canvas, codes, rng)
        instance, instances = _compact_instances(canvas, counter.classes)
        return SyntheticFrame(image=image, semantic=semantic_from_codes(codes),
                              instance=instance, instances=instances, seed=self.seed,
                              index=index)

    def _sample_camera(self, rng: np.random.Generator) -> Camera:
        return Camera(
            width=self.width, height=self.height,
            focal=self.width * rng.uniform(0.95, 1.25),
            cx=self.width * (0.5 + rng.normal(0.0, 0.01)),
            cy=self.height * (0.5 + rng.normal(0.0, 0.02)),
            mount_height=rng.uniform(1.15, 1.95),
            lateral=float(np.clip(rng.normal(0.0, 0.3), -0.8, 0.8)),
            pitch=rng.uniform(-0.015, 0.06),
            yaw=float(np.clip(rng.normal(0.0, 0.035), -0.08, 0.08)))


def _sun_direction(layout: StreetLayout) -> np.ndarray:
    """Unit vector towards the light (sun, or the bright overcast sky)."""
    if not layout.sunny:
        return np.array([0.0, 1.0, 0.0])
    side = -1.0 if layout.sun_from_left else 1.0
    vector = np.array([side * 0.7, 0.6, 0.4])
    return vector / np.linalg.norm(vector)


def _draw_ego_hood(canvas: Canvas, rng: np.random.Generator) -> None:
    """The ego car's bonnet along the bottom edge, labelled void like Cityscapes' ego vehicle."""
    w, h = canvas.camera.width, canvas.camera.height
    depth = h * rng.uniform(0.06, 0.14)
    bulge = rng.uniform(0.2, 0.5)
    u = np.linspace(-0.05 * w, 1.05 * w, 24)
    v = h - depth * (1.0 - bulge * ((u - w / 2) / (w / 2)) ** 2)
    outline = np.concatenate([np.stack([u, v], axis=1), [[1.05 * w, h + 2], [-0.05 * w, h + 2]]])
    color = np.asarray([rng.uniform(10, 90)] * 3) + rng.uniform(-10, 10, 3)
    canvas.fill_pixels([outline], np.clip(color, 0, 255), VOID_ID, 0)


def _noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """(height, width) float32 smooth unit noise with features of about ``cell`` pixels."""
    small = rng.standard_normal((max(height // cell, 2), max(width // cell, 2)),
                                dtype=np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _tiled_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(height, width) float32 per-pixel unit noise, tiled from a 128x128 block for speed."""
    tile = rng.standard_normal((128, 128), dtype=np.float32)
    reps = (height // 128 + 2, width // 128 + 2)
    row, col = (int(v) for v in rng.integers(0, 128, 2))
    return np.tile(tile, reps)[row:row + height, col:col + width]


def _finish_image(canvas: Canvas, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Texture, shadows, sensor noise, blur, exposure, white balance, gamma.

    Args:
        canvas: The drawn frame.
        codes: (H, W) uint8 ``canvas.texture_codes()``: train id, flipped where shaded.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    h, w = codes.shape
    fine_lut = np.full(256, 0.03, dtype=np.float32)
    blotch_lut = np.full(256, 0.03, dtype=np.float32)
    fine_lut[:19] = np.asarray(_FINE_TEXTURE, dtype=np.float32) * rng.uniform(0.6, 1.5)
    blotch_lut[:19] = np.asarray(_BLOTCH_TEXTURE, dtype=np.float32) * rng.uniform(0.6, 1.5)
    grain = max(1, round(w / 1024))
    fine = _noise(rng, h, w, grain) if grain > 1 else _tiled_noise(rng, h, w)
    blotch = _noise(rng, h, w, max(4, w // 128))
    fine_lut += rng.uniform(0.004, 0.03)  # sensor noise, on every class
    shaded = np.arange(256) ^ SHADED_CODE_FLIP  # a shaded code's texture is its class's
    fine_lut[shaded[:19]] = fine_lut[:19]
    blotch_lut[shaded[:19]] = blotch_lut[:19]
    factor = cv2.LUT(codes, fine_lut) * fine
    factor += cv2.LUT(codes, blotch_lut) * blotch
    factor += 1.0
    if canvas.shadow_factor is not None:
        shade_lut = np.ones(256, dtype=np.float32)
        shade_lut[shaded[:19]] = canvas.shadow_factor
        shade_lut[shaded[255]] = canvas.shadow_factor
        factor *= cv2.LUT(codes, shade_lut)
    # One OpenCV pass: numpy broadcasts the (H, W, 1) factor over 3 channels element-wise.
    cv2.multiply(canvas.image, cv2.merge((factor, factor, factor)), dst=canvas.image)
    image = cv2.convertScaleAbs(canvas.image)

    sigma = rng.uniform(0.2, 1.3) * w / 1024.0
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < 0.15:
        length = max(3, int(round(rng.uniform(2.0, 7.0) * w / 1024.0)))
        image = cv2.blur(image, (length, 1))
    gain = rng.uniform(0.7, 1.25) * np.exp(rng.normal(0.0, 0.05, 3))
    gamma = rng.uniform(0.85, 1.15)
    levels = np.arange(256, dtype=np.float64)[:, None] * gain[None, :] / 255.0
    curve = 255.0 * np.power(np.clip(levels, 0.0, 1.0), gamma)
    lut = np.clip(np.rint(curve), 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(image, lut)


def _compact_instances(canvas: Canvas, classes: List[int]
                       ) -> Tuple[np.ndarray, List[InstanceInfo]]:
    """Renumber the visible instances 1..N (hidden ones leave no id) and measure them.

    Args:
        canvas: The drawn frame (instance ids as drawn: i is ``classes[i - 1]``).
        classes: Train id of each drawn id.

    Returns:
        ``(instance, infos)``: (H, W) int32 compact ids and their :class:`InstanceInfo`.
    """
    visible, boxes, areas = canvas.measure_instances()
    infos = [InstanceInfo(id=new, train_id=int(classes[old - 1]), bbox=box, area=area)
             for new, (old, box, area) in enumerate(zip(visible, boxes, areas), start=1)]
    return canvas.instance_map(visible), infos


def thing_train_ids() -> Tuple[int, ...]:
    """Train ids the generator draws as thing instances."""
    return (TrainId.PERSON, TrainId.RIDER, TrainId.CAR, TrainId.TRUCK, TrainId.BUS,
            TrainId.TRAIN, TrainId.MOTORCYCLE, TrainId.BICYCLE)
