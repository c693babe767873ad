"""Thing instances of the synthetic streets: which ones a frame gets, and where.

:func:`sample_things` fills the lanes with traffic (cars, trucks, buses, a tram on the rails),
the parking strips with cars, the sidewalks and crossings with pedestrians, and adds riders;
how each looks is in :mod:`.vehicles` (convex solids shaded by the sun direction) and
:mod:`.people` (upright billboards made of a few parts). Every object gets its instance id
from an :class:`InstanceCounter` when it is sampled; the generator later drops ids that ended
up fully hidden.
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from .instances import InstanceCounter, Pose
from .layout import pick, StreetLayout
from .people import make_person, make_rider
from .props import Drawable
from .vehicles import make_bus, make_car, make_tram, make_truck


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
