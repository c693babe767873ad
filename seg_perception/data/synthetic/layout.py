"""Random street layout: lanes, sidewalks, grass strips, building lines, lighting.

All distances in metres in the world frame of :mod:`scene_camera` (X right, Z forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

Color = Tuple[float, float, float]


def jitter(rng: np.random.Generator, color: Color, amount: float) -> Color:
    """``color`` with a shared brightness shift and a smaller per-channel shift, both up to
    ``amount``, clipped to 0..255."""
    shift, *channel = rng.uniform(-amount, amount, 4).tolist()  # Python floats: faster
    return tuple(min(max(float(c) + shift + 0.5 * d, 0.0), 255.0)
                 for c, d in zip(color, channel))


def pick(rng: np.random.Generator, choices):
    return choices[int(rng.integers(len(choices)))]


@dataclass(frozen=True)
class SideLayout:
    """One side of the street, from the kerb outwards.

    Attributes:
        sign: -1 for the left side, +1 for the right side.
        sidewalk_width: Width of the sidewalk, metres.
        grass_inner: Width of a grass strip between kerb and sidewalk (0: none).
        grass_outer: Width of a grass strip between sidewalk and buildings (0: none).
        built: True for a row of buildings, False for an open park-like side.
        setback: Extra distance from the outer edge to the building line, metres.
    """

    sign: int
    sidewalk_width: float
    grass_inner: float
    grass_outer: float
    built: bool
    setback: float


@dataclass(frozen=True)
class StreetLayout:
    """Cross-section of the street and the lighting of the frame.

    Attributes:
        lane_width: Width of one lane, metres.
        lanes_left: Lanes left of the ego lane.
        lanes_right: Lanes right of the ego lane.
        two_way: The lanes left of the ego lane carry oncoming traffic.
        parking_left: A parking lane along the left kerb.
        parking_right: A parking lane along the right kerb.
        left: Left side of the street.
        right: Right side of the street.
        street_end: Distance at which the street ends, metres.
        sunny: Direct sunlight (cast shadows, stronger shading) rather than overcast.
        sun_from_left: Which side the sun shines from.
        tram_rails: Tram rails run along the ego lane.
    """

    lane_width: float
    lanes_left: int
    lanes_right: int
    two_way: bool
    parking_left: bool
    parking_right: bool
    left: SideLayout
    right: SideLayout
    street_end: float
    sunny: bool
    sun_from_left: bool
    tram_rails: bool

    @property
    def road_left(self) -> float:
        return -(self.lanes_left + 0.5) * self.lane_width - 2.3 * self.parking_left

    @property
    def road_right(self) -> float:
        return (self.lanes_right + 0.5) * self.lane_width + 2.3 * self.parking_right

    def kerb(self, sign: int) -> float:
        return self.road_left if sign < 0 else self.road_right

    def side(self, sign: int) -> SideLayout:
        return self.left if sign < 0 else self.right

    def sidewalk_span(self, sign: int) -> Tuple[float, float]:
        """(inner, outer) |X| of the sidewalk on one side."""
        side = self.side(sign)
        inner = abs(self.kerb(sign)) + side.grass_inner
        return inner, inner + side.sidewalk_width

    def building_line(self, sign: int) -> float:
        """|X| of the facades on one side."""
        side = self.side(sign)
        return self.sidewalk_span(sign)[1] + side.grass_outer + side.setback

    def lane_centers(self) -> Tuple[float, ...]:
        """X of every driving lane centre (parking lanes excluded), left to right."""
        return tuple(k * self.lane_width for k in range(-self.lanes_left, self.lanes_right + 1))


def sample_side(rng: np.random.Generator, sign: int) -> SideLayout:
    built = bool(rng.random() < 0.78)
    return SideLayout(
        sign=sign,
        sidewalk_width=float(rng.uniform(1.8, 5.0)),
        grass_inner=float(rng.uniform(0.8, 2.5)) if rng.random() < 0.3 else 0.0,
        grass_outer=float(rng.uniform(1.0, 4.0)) if rng.random() < (0.25 if built else 0.8)
        else 0.0,
        built=built,
        setback=float(rng.uniform(0.0, 1.5)) if built else float(rng.uniform(8.0, 25.0)),
    )


def sample_layout(rng: np.random.Generator) -> StreetLayout:
    lanes_left = int(rng.choice([0, 0, 1, 1, 2]))
    lanes_right = int(rng.choice([0, 0, 0, 1]))
    return StreetLayout(
        lane_width=float(rng.uniform(2.9, 3.7)),
        lanes_left=lanes_left,
        lanes_right=lanes_right,
        two_way=bool(lanes_left > 0 and rng.random() < 0.7),
        parking_left=bool(rng.random() < 0.35),
        parking_right=bool(rng.random() < 0.55),
        left=sample_side(rng, -1),
        right=sample_side(rng, +1),
        street_end=float(rng.uniform(70.0, 220.0)),
        sunny=bool(rng.random() < 0.55),
        sun_from_left=bool(rng.random() < 0.5),
        tram_rails=bool(rng.random() < 0.3),
    )


class TrainId:
    """Cityscapes train ids used by the generator (checked against ``labels.cityscapes()``)."""

    ROAD = 0
    SIDEWALK = 1
    BUILDING = 2
    WALL = 3
    FENCE = 4
    POLE = 5
    TRAFFIC_LIGHT = 6
    TRAFFIC_SIGN = 7
    VEGETATION = 8
    TERRAIN = 9
    SKY = 10
    PERSON = 11
    RIDER = 12
    CAR = 13
    TRUCK = 14
    BUS = 15
    TRAIN = 16
    MOTORCYCLE = 17
    BICYCLE = 18
