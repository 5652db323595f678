"""Course geometry: where a distance along the course is, how high, how steep.

A course arrives as the rows stored in ``Course.points``: ``[lat, lon, ele_or_None,
cumulative_distance_m]``. Lookups are binary searches (``numpy.searchsorted`` inside
``numpy.interp``) and accept one distance or a whole array of them, so one tick of ten
thousand athletes is a single call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# GPS and barometric elevations jitter by a few metres between points a few metres
# apart; raw point-to-point gradients would swing between -100 % and +100 %. The
# gradient the runner feels is taken from elevation smoothed over this window.
GRADIENT_WINDOW_M = 100.0
_RESAMPLE_STEP_M = 10.0


class CourseError(ValueError):
    """The points cannot describe a course (empty, not increasing, not finite)."""


class Course:
    """Immutable course geometry built from cumulative-distance points."""

    def __init__(self, points: Sequence[Sequence[float | None]]) -> None:
        if len(points) < 2:
            raise CourseError("a course needs at least two points")
        rows = np.array(
            [(p[0], p[1], np.nan if p[2] is None else p[2], p[3]) for p in points],
            dtype=float,
        )
        self.latitudes = rows[:, 0]
        self.longitudes = rows[:, 1]
        self.distances = rows[:, 3]
        if not np.all(np.isfinite(rows[:, [0, 1, 3]])):
            raise CourseError("course points must have finite coordinates and distances")
        if np.any(np.diff(self.distances) < 0) or self.distances[0] != 0:
            raise CourseError("course distances must start at 0 and never decrease")
        self.length_m = float(self.distances[-1])
        if self.length_m <= 0:
            raise CourseError("a course must be longer than 0 m")
        self.elevations = _fill_missing(rows[:, 2], self.distances)
        self._grid, self._smooth_ele = self._smoothed_profile()
        rises = np.clip(np.diff(self._smooth_ele), 0.0, None)
        self._climb = np.concatenate([[0.0], np.cumsum(rises)])
        self.climb_m = float(self._climb[-1])

    def point_at(self, distance_m: float) -> tuple[float, float, float]:
        """(latitude, longitude, elevation) at ``distance_m`` along the course."""
        lat, lon, ele = self.locate(np.array([distance_m]))
        return float(lat[0]), float(lon[0]), float(ele[0])

    def locate(self, distances_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latitudes, longitudes and elevations at many distances (clamped to the course)."""
        d = np.clip(distances_m, 0.0, self.length_m)
        return (
            np.interp(d, self.distances, self.latitudes),
            np.interp(d, self.distances, self.longitudes),
            np.interp(d, self.distances, self.elevations),
        )

    def elevation_at(self, distance_m: float | np.ndarray) -> float | np.ndarray:
        """Recorded elevation (metres) at a distance, linearly interpolated."""
        return np.interp(np.clip(distance_m, 0.0, self.length_m), self.distances, self.elevations)

    def gradient_at(self, distance_m: float | np.ndarray) -> float | np.ndarray:
        """Smoothed gradient (rise over run, 0.1 = 10 %) at a distance."""
        d = np.clip(np.asarray(distance_m, dtype=float), 0.0, self.length_m)
        half = GRADIENT_WINDOW_M / 2
        lo = np.clip(d - half, 0.0, self.length_m)
        hi = np.clip(d + half, 0.0, self.length_m)
        rise = self.smoothed_elevation(hi) - self.smoothed_elevation(lo)
        run = np.maximum(hi - lo, 1e-9)
        return rise / run

    def smoothed_elevation(self, distance_m: float | np.ndarray) -> float | np.ndarray:
        """Elevation after a moving average over ``GRADIENT_WINDOW_M``."""
        return np.interp(distance_m, self._grid, self._smooth_ele)

    def cell_gradients(self, knots_m: np.ndarray) -> np.ndarray:
        """Mean smoothed gradient of each cell between consecutive knots (0 for empty cells)."""
        ele = self.smoothed_elevation(knots_m)
        run = np.diff(knots_m)
        rise = np.diff(ele)
        return np.divide(rise, run, out=np.zeros_like(run), where=run > 0)

    def climb_to(self, knots_m: np.ndarray) -> np.ndarray:
        """Cumulative ascent (metres, smoothed elevation) from the start to each distance."""
        return np.interp(knots_m, self._grid, self._climb)

    def _smoothed_profile(self) -> tuple[np.ndarray, np.ndarray]:
        steps = max(int(np.ceil(self.length_m / _RESAMPLE_STEP_M)), 1)
        grid = np.linspace(0.0, self.length_m, steps + 1)
        ele = np.interp(grid, self.distances, self.elevations)
        width = round(GRADIENT_WINDOW_M / (self.length_m / steps))
        if width < 2 or width >= len(grid):
            return grid, ele
        padded = np.pad(ele, (width // 2, width - 1 - width // 2), mode="edge")
        return grid, np.convolve(padded, np.ones(width) / width, mode="valid")


def _fill_missing(elevations: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Interpolate missing elevations from their neighbours; a course without any is flat."""
    known = np.isfinite(elevations)
    if not known.any():
        return np.zeros_like(elevations)
    if known.all():
        return elevations
    return np.interp(distances, distances[known], elevations[known])
