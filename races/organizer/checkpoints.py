"""Where a course's checkpoints are: its waypoints projected onto it, or every N km."""

import math
from dataclasses import dataclass

from races.organizer.gpx import MAX_WAYPOINT_OFFSET_M, MIN_CHECKPOINT_SPACING_M, ParsedCourse

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class PlannedCheckpoint:
    name: str
    distance_m: float
    kind: str  # "start", "checkpoint" or "finish"


def plan_checkpoints(course: ParsedCourse, interval_km: float) -> list[PlannedCheckpoint]:
    """Start, the intermediate checkpoints, finish; ordered by distance along the course."""
    length = course.length_m
    middle = _from_waypoints(course) or _every(interval_km * 1000.0, length)
    middle = [
        cp
        for cp in middle
        if MIN_CHECKPOINT_SPACING_M <= cp.distance_m <= length - MIN_CHECKPOINT_SPACING_M
    ]
    middle.sort(key=lambda cp: cp.distance_m)
    return [
        PlannedCheckpoint("Start", 0.0, "start"),
        *middle,
        PlannedCheckpoint("Finish", length, "finish"),
    ]


def _every(interval_m: float, length_m: float) -> list[PlannedCheckpoint]:
    if interval_m <= 0:
        return []
    count = int(length_m // interval_m)
    return [
        PlannedCheckpoint(f"{i * interval_m / 1000:g} km", i * interval_m, "checkpoint")
        for i in range(1, count + 1)
    ]


def _from_waypoints(course: ParsedCourse) -> list[PlannedCheckpoint]:
    planned = []
    for waypoint in course.waypoints:
        offset, distance = _nearest_on_course(course, waypoint.latitude, waypoint.longitude)
        if offset <= MAX_WAYPOINT_OFFSET_M:
            planned.append(PlannedCheckpoint(waypoint.name[:100], distance, "checkpoint"))
    return planned


def _nearest_on_course(
    course: ParsedCourse, latitude: float, longitude: float
) -> tuple[float, float]:
    """(metres from the course, distance along the course) of the nearest course point."""
    cos_lat = math.cos(math.radians(latitude))
    best = min(
        course.points,
        key=lambda p: (p.latitude - latitude) ** 2 + ((p.longitude - longitude) * cos_lat) ** 2,
    )
    dy = math.radians(best.latitude - latitude)
    dx = math.radians(best.longitude - longitude) * cos_lat
    return math.hypot(dx, dy) * EARTH_RADIUS_M, best.distance_m
