"""Every athlete's race as a time-versus-distance table, and where they are at time t.

For each athlete the course is cut into cells at common knots; the time to cross a cell
is the athlete's flat pace adjusted by the pacing models. Cumulative sums give the race
time at which the athlete reaches each knot, a non-decreasing table. Each checkpoint
appears twice among the knots (arrival, departure): the cell between them has no length
and lasts the athlete's stop. Position at time t is the inverse of that table, found by
bisection, so any instant is computed directly and identically however it is reached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from simulator.effort import effort_seconds_per_cell
from simulator.geometry import Course
from simulator.pacing import PacingProfile

KNOTS_PER_COURSE = 600
MIN_CELL_M = 25.0
MAX_CELL_M = 250.0


def course_knots(length_m: float, checkpoints_m: Sequence[float]) -> np.ndarray:
    """Evenly spaced knots plus every intermediate checkpoint twice (arrival, departure)."""
    cell = min(max(length_m / KNOTS_PER_COURSE, MIN_CELL_M), MAX_CELL_M)
    base = np.linspace(0.0, length_m, max(math.ceil(length_m / cell), 1) + 1)
    stops = np.asarray(sorted(checkpoints_m), dtype=float)
    return np.sort(np.concatenate([np.unique(np.concatenate([base, stops])), stops]))


class Timeline:
    """Arrival times of all athletes at all knots, and the inverse: distance at time t."""

    def __init__(
        self, course: Course, checkpoints_m: Sequence[float], profiles: Sequence[PacingProfile]
    ) -> None:
        if any(not 0 < d < course.length_m for d in checkpoints_m):
            raise ValueError("intermediate checkpoints must lie strictly inside the course")
        self.length_m = course.length_m
        self.knots = course_knots(course.length_m, checkpoints_m)
        self.checkpoint_knots = np.searchsorted(self.knots, np.sort(checkpoints_m), side="left")
        self.times = self._arrival_times(course, profiles)
        self.finish_s = self.times[:, -1].copy()
        self.dnf_s = np.array([self._time_at(i, p.dnf_at_m) for i, p in enumerate(profiles)])
        self.dnf_m = np.array([np.inf if p.dnf_at_m is None else p.dnf_at_m for p in profiles])
        self.end_s = np.minimum(self.finish_s, self.dnf_s)
        self._rows = np.arange(len(profiles))

    @property
    def athletes(self) -> int:
        return self.times.shape[0]

    def checkpoint_arrivals(self) -> np.ndarray:
        """Race seconds each athlete reaches each intermediate checkpoint (inf if never)."""
        arrivals = self.times[:, self.checkpoint_knots].copy()
        cp_m = self.knots[self.checkpoint_knots]
        arrivals[self.dnf_m[:, None] <= cp_m[None, :]] = np.inf
        return arrivals

    def state_at(self, race_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Distance (m) and speed (m/s) of every athlete at race second ``race_s``.

        Athletes who finished stay at the course length, DNFs where they stopped; both
        have speed 0. Before the start everyone is at 0.
        """
        t = np.minimum(np.full(self.athletes, max(race_s, 0.0)), self.end_s)
        cell = self._cells_at(t)
        t0 = self.times[self._rows, cell]
        t1 = self.times[self._rows, cell + 1]
        d0 = self.knots[cell]
        d1 = self.knots[cell + 1]
        span = t1 - t0
        frac = np.divide(t - t0, span, out=np.zeros_like(t), where=span > 0)
        distance = d0 + np.clip(frac, 0.0, 1.0) * (d1 - d0)
        speed = np.divide(d1 - d0, span, out=np.zeros_like(t), where=span > 0)
        done = race_s >= self.end_s
        distance = np.where(race_s >= self.finish_s, self.length_m, distance)
        distance = np.where(race_s >= self.dnf_s, np.minimum(self.dnf_m, self.length_m), distance)
        return distance, np.where(done, 0.0, speed)

    def speed_before(self, knot: int) -> np.ndarray:
        """Each athlete's speed (m/s) in the last moving cell that ends at ``knot``."""
        while knot > 0 and self.knots[knot] == self.knots[knot - 1]:
            knot -= 1
        if knot == 0:
            return np.zeros(self.athletes)
        span = self.times[:, knot] - self.times[:, knot - 1]
        return np.divide(
            self.knots[knot] - self.knots[knot - 1],
            span,
            where=span > 0,
            out=np.zeros(self.athletes),
        )

    def _cells_at(self, t: np.ndarray) -> np.ndarray:
        """Per athlete, the cell j with times[j] <= t < times[j + 1] (vectorised bisection)."""
        lo = np.zeros(self.athletes, dtype=np.int64)
        hi = np.full(self.athletes, self.times.shape[1] - 1, dtype=np.int64)
        while np.any(hi - lo > 1):
            mid = (lo + hi) // 2
            right = self.times[self._rows, mid] <= t
            lo = np.where(right, mid, lo)
            hi = np.where(right, hi, mid)
        return lo

    def _time_at(self, athlete: int, distance_m: float | None) -> float:
        if distance_m is None:
            return math.inf
        # Knots are non-decreasing; interpolating at a stop picks its arrival time.
        return float(np.interp(distance_m, self.knots, self.times[athlete]))

    def _arrival_times(self, course: Course, profiles: Sequence[PacingProfile]) -> np.ndarray:
        knots = self.knots
        mid = (knots[:-1] + knots[1:]) / 2
        seconds_per_flat_s = effort_seconds_per_cell(course, knots)
        paces = np.array([p.flat_pace_s_per_km for p in profiles])[:, None]
        cells = paces * seconds_per_flat_s[None, :] * variation_matrix(profiles, mid)
        stop_cells = self.checkpoint_knots  # the cell from arrival to departure
        cells[:, stop_cells] = np.array([p.stops_s for p in profiles]).reshape(
            len(profiles), len(stop_cells)
        )
        times = np.zeros((len(profiles), len(knots)))
        np.cumsum(cells, axis=1, out=times[:, 1:])
        return times


def variation_matrix(profiles: Sequence[PacingProfile], distances_m: np.ndarray) -> np.ndarray:
    """Every athlete's ``PacingProfile.variation`` at ``distances_m``, as one matrix."""
    factor = np.ones((len(profiles), len(distances_m)))
    for wave in range(len(profiles[0].wavelengths_m) if profiles else 0):
        wavelength = np.array([p.wavelengths_m[wave] for p in profiles])[:, None]
        amplitude = np.array([p.amplitudes[wave] for p in profiles])[:, None]
        phase = np.array([p.phases[wave] for p in profiles])[:, None]
        factor += amplitude * np.sin(2 * np.pi * distances_m[None, :] / wavelength + phase)
    return factor
