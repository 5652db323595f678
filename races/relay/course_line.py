"""The course polyline, for snapping tracker positions onto it (forward only).

Events from the simulator carry `distance_m`; events without it (real trackers) are
snapped onto the course, *forward only*: the search starts at the athlete's last distance
and reaches only as far as they can have run since then. That is what keeps a loop course
(start next to the finish) and an out-and-back course (the same trail twice) from putting
an athlete at the wrong end.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

EARTH_RADIUS_M = 6_378_137.0  # as gpxpy, which measured the course

# Snapping tolerances (metres). A fix further than OFF_COURSE_M from the course keeps the
# athlete's last distance. Candidates within AMBIGUITY_M of the best one count as "the
# athlete could be here"; the first such stretch along the course wins (forward only).
OFF_COURSE_M = 250.0
AMBIGUITY_M = 25.0


class CourseLine:
    """The course polyline with cumulative distances, for snapping positions onto it.

    `points` are `[lat, lon, ele_or_null, distance_m]` as stored on `Course.points`.
    Coordinates are projected once onto a local plane (equirectangular around the course's
    mean latitude): metres are accurate enough to choose the nearest stretch, and the
    distance itself comes from the stored cumulative distances.
    """

    def __init__(self, points: Sequence[Sequence[float | None]]) -> None:
        if not points:
            raise ValueError("a course needs at least one point")
        lat0 = math.radians(sum(p[0] for p in points) / len(points))
        self._ky = EARTH_RADIUS_M * math.pi / 180.0
        self._kx = self._ky * math.cos(lat0)
        self._xs = [p[1] * self._kx for p in points]
        self._ys = [p[0] * self._ky for p in points]
        self._dist = [float(p[3]) for p in points]
        self.length_m = self._dist[-1]

    def snap(self, lat: float, lon: float, lo_m: float, hi_m: float) -> float | None:
        """Distance along the course of (lat, lon), searched only within [lo_m, hi_m].

        Returns None when the point is off the course (no stretch within OFF_COURSE_M).
        """
        x, y = lon * self._kx, lat * self._ky
        dist, xs, ys = self._dist, self._xs, self._ys
        if len(dist) == 1:
            return 0.0 if math.hypot(x - xs[0], y - ys[0]) <= OFF_COURSE_M else None
        first = max(bisect_right(dist, lo_m) - 1, 0)
        last = min(bisect_left(dist, hi_m) + 1, len(dist) - 1)
        candidates: list[tuple[float, float]] = []
        for i in range(first, max(last, first + 1)):
            ax, ay = xs[i], ys[i]
            dx, dy = xs[i + 1] - ax, ys[i + 1] - ay
            length2 = dx * dx + dy * dy
            t = 0.0 if length2 == 0.0 else ((x - ax) * dx + (y - ay) * dy) / length2
            t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
            err = math.hypot(x - (ax + t * dx), y - (ay + t * dy))
            candidates.append((dist[i] + t * (dist[i + 1] - dist[i]), err))
        best_err = min(err for _, err in candidates)
        if best_err > OFF_COURSE_M:
            return None
        return min(max(_first_plausible_stretch(candidates, best_err + AMBIGUITY_M), lo_m), hi_m)


def _first_plausible_stretch(candidates: list[tuple[float, float]], limit: float) -> float:
    """Best candidate of the first run of consecutive segments within `limit` of the fix.

    A later run is the course passing by the same place again (the way back of an
    out-and-back, the finish of a loop): forward-only tracking must not jump there.
    """
    best: tuple[float, float] | None = None
    for distance, err in candidates:
        if err <= limit:
            if best is None or err < best[1]:
                best = (distance, err)
        elif best is not None:
            break
    assert best is not None  # the best candidate itself is within the limit
    return best[0]
