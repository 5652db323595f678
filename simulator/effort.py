"""The course's effort profile: how long any stretch of the course takes, relative to flat.

One function of the course, shared by the simulator's pacing (`simulator.timeline`: an
athlete's time over a cell is their flat pace times the cell's effort seconds) and by the
relay's predictor (`races.relay.prediction`: an athlete's own pace so far, relative to the
effort they have covered, projected onto the effort still ahead). Effort seconds are the
seconds an athlete with a flat pace of 1 s/km needs, with Tobler's gradient factor and
Riegel's fatigue (`simulator.pacing`) applied; stops and an athlete's own variation are not
in it (the predictor's band accounts for those).

`CourseEffort.at` is pure Python (bisect over a few hundred knots): the relay asks it for
every athlete that moved in a frame and numpy's per-call overhead would dominate.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from simulator.geometry import Course, CourseError
from simulator.pacing import (
    CHECKPOINT_STOP_MEDIAN_S,
    CHECKPOINT_STOP_SIGMA,
    effort_km,
    riegel_fatigue,
    tobler_speed_factor,
)

EFFORT_KNOTS = 600
# What a stop at a checkpoint costs on average: the mean of the simulator's log-normal
# stop (median 45 s). Predictions keep stops out of the pace (`races.relay.prediction`).
EXPECTED_STOP_S = round(CHECKPOINT_STOP_MEDIAN_S * math.exp(CHECKPOINT_STOP_SIGMA**2 / 2), 1)
MIN_EFFORT_CELL_M = 25.0
MAX_EFFORT_CELL_M = 250.0


def effort_seconds_per_cell(course: Course, knots_m: np.ndarray) -> np.ndarray:
    """Seconds to cross each cell between consecutive knots at a flat pace of 1 s/km:
    the simulator's gradient (Tobler) and fatigue (Riegel) models, evaluated mid-cell."""
    length = np.diff(knots_m)
    mid = (knots_m[:-1] + knots_m[1:]) / 2
    climb = course.climb_to(knots_m)
    effort_mid = effort_km(mid, (climb[:-1] + climb[1:]) / 2)
    return (
        length
        / 1000.0
        * riegel_fatigue(effort_mid)
        / tobler_speed_factor(course.cell_gradients(knots_m))
    )


class CourseEffort:
    """Cumulative effort seconds from the start to any distance along the course."""

    __slots__ = ("_cumulative", "_knots", "length_m", "total_s")

    def __init__(self, knots_m: Sequence[float], cumulative_s: Sequence[float]) -> None:
        if len(knots_m) < 2 or len(knots_m) != len(cumulative_s):
            raise ValueError("an effort profile needs two or more knots, one value each")
        self._knots = [float(k) for k in knots_m]
        self._cumulative = [float(c) for c in cumulative_s]
        self.length_m = self._knots[-1]
        self.total_s = self._cumulative[-1]

    @classmethod
    def of_course(cls, course: Course) -> CourseEffort:
        cell = min(max(course.length_m / EFFORT_KNOTS, MIN_EFFORT_CELL_M), MAX_EFFORT_CELL_M)
        knots = np.linspace(0.0, course.length_m, max(int(np.ceil(course.length_m / cell)), 1) + 1)
        cumulative = np.concatenate([[0.0], np.cumsum(effort_seconds_per_cell(course, knots))])
        return cls(knots.tolist(), cumulative.tolist())

    @classmethod
    def flat(cls, length_m: float) -> CourseEffort:
        """A course without elevation or geometry: effort is distance (1 s per km)."""
        length = max(float(length_m), 1.0)
        return cls([0.0, length], [0.0, length / 1000.0])

    @classmethod
    def of_points(cls, points: Sequence[Sequence[float | None]], length_m: float) -> CourseEffort:
        """From `Course.points` rows; flat when they cannot describe a course."""
        try:
            return cls.of_course(Course(points))
        except CourseError:
            return cls.flat(length_m)

    def at(self, distance_m: float) -> float:
        """Effort seconds from the start to `distance_m` (clamped to the course)."""
        knots = self._knots
        if distance_m <= 0.0:
            return 0.0
        if distance_m >= self.length_m:
            return self.total_s
        i = bisect_right(knots, distance_m) - 1
        k0, k1 = knots[i], knots[i + 1]
        c0, c1 = self._cumulative[i], self._cumulative[i + 1]
        return c0 + (c1 - c0) * (distance_m - k0) / (k1 - k0)

    def fraction_at(self, distance_m: float) -> float:
        """Share of the course's whole effort done at `distance_m` (0..1)."""
        return self.at(distance_m) / self.total_s if self.total_s > 0 else 0.0


def even_effort_schedule(
    effort: CourseEffort, anchors: Sequence[tuple[float, float]], samples: int = 96
) -> list[list[float]]:
    """`[[distance_m, race_s], ...]` of a pacer that passes each anchor `(distance, race
    seconds)` on time and, between two anchors, keeps an even effort: its time grows with
    the course's effort, so it slows on climbs like the athletes do. Sampled at `samples`
    even steps plus the anchors; a page interpolates linearly in between."""
    anchors = sorted(anchors)
    if len(anchors) < 2:
        raise ValueError("a schedule needs a start and a finish")
    length = anchors[-1][0]
    steps = {anchors[0][0] + (length - anchors[0][0]) * i / samples for i in range(samples + 1)}
    out = []
    for distance in sorted(steps | {d for d, _ in anchors}):
        i = min(max(bisect_right([d for d, _ in anchors], distance) - 1, 0), len(anchors) - 2)
        (d0, t0), (d1, t1) = anchors[i], anchors[i + 1]
        e0, e1 = effort.at(d0), effort.at(d1)
        if e1 > e0:
            share = (effort.at(distance) - e0) / (e1 - e0)
        else:
            share = (distance - d0) / (d1 - d0) if d1 > d0 else 1.0
        out.append([round(distance, 1), round(t0 + share * (t1 - t0), 1)])
    return out
