"""Builders for race-state tests: synthetic and real courses, a start list, an event feed."""

import itertools
import math
from datetime import UTC, datetime, timedelta

import gpxpy

from races.relay.athlete_state import AthleteSpec
from races.relay.course_line import CourseLine
from races.relay.race_state import RaceState
from tests.conftest import SAMPLE_GPX

GPX_DIR = SAMPLE_GPX
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
M_PER_DEG = gpxpy.geo.ONE_DEGREE


# ---- course builders ---------------------------------------------------------------------


def with_distances(latlons: list[tuple[float, float]]) -> list[list]:
    """[lat, lon, ele, cumulative distance] like Course.points, distances from gpxpy."""
    points, total = [], 0.0
    for i, (lat, lon) in enumerate(latlons):
        if i:
            total += gpxpy.geo.haversine_distance(*latlons[i - 1], lat, lon)
        points.append([lat, lon, None, total])
    return points


def loop_course(radius_m: float = 800.0, stem_m: float = 400.0, lane_m: float = 3.0) -> list[list]:
    """A loop whose start and finish share their first and last `stem_m` of trail.

    Out along the stem, once round a circle, back along the stem on the other side of
    the trail (`lane_m` away) to a finish next to the start.
    """
    lat0, lon0 = 47.0, 11.0
    m_per_deg_lon = M_PER_DEG * math.cos(math.radians(lat0))
    stem_out = [(lat0 + stem_m * i / 20 / M_PER_DEG, lon0) for i in range(20)]
    centre_north = stem_m + radius_m
    circle = []
    for i in range(241):
        angle = 2 * math.pi * i / 240
        north = centre_north - radius_m * math.cos(angle)
        east = radius_m * math.sin(angle)
        circle.append((lat0 + north / M_PER_DEG, lon0 + east / m_per_deg_lon))
    lane = lane_m / m_per_deg_lon
    stem_back = [(lat0 + stem_m * (20 - i) / 20 / M_PER_DEG, lon0 + lane) for i in range(1, 21)]
    return with_distances(stem_out + circle + stem_back)


def out_and_back_course(leg_m: float = 2500.0, offset_m: float = 4.0) -> list[list]:
    """North for `leg_m`, then back south on the other side of the same trail."""
    lat0, lon0 = 47.0, 11.0
    east = offset_m / (M_PER_DEG * math.cos(math.radians(lat0)))
    out = [(lat0 + leg_m * i / 50 / M_PER_DEG, lon0) for i in range(51)]
    back = [(lat0 + leg_m * (50 - i) / 50 / M_PER_DEG, lon0 + east) for i in range(51)]
    return with_distances(out + back)


def gpx_course(name: str) -> list[list]:
    with (GPX_DIR / name).open(encoding="utf-8-sig") as handle:
        gpx = gpxpy.parse(handle)
    return with_distances(
        [(p.latitude, p.longitude) for t in gpx.tracks for s in t.segments for p in s.points]
    )


def point_at(points: list[list], distance: float, wobble_m: float = 0.0) -> tuple[float, float]:
    """Where the course is at `distance`, moved `wobble_m` sideways like GPS noise."""
    for a, b in itertools.pairwise(points):
        if a[3] <= distance <= b[3] and b[3] > a[3]:
            t = (distance - a[3]) / (b[3] - a[3])
            lat, lon = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
            return lat + wobble_m / M_PER_DEG, lon + wobble_m / M_PER_DEG
    return points[-1][0], points[-1][1]


# ---- race builders -----------------------------------------------------------------------

ATHLETES = [
    AthleteSpec(1, "1", "Ada Fast", "female", "W30"),
    AthleteSpec(2, "2", "Bob Steady", "male", "M40"),
    AthleteSpec(3, "3", "Cleo Slow", "female", "W30"),
    AthleteSpec(4, "4", "Dan Walker", "male", "M40"),
]


def make_state(points, checkpoints=(), athletes=ATHLETES) -> RaceState:
    return RaceState(
        length_m=points[-1][3],
        checkpoints=checkpoints,
        athletes=athletes,
        start_time=START,
        course=CourseLine(points),
    )


class Feed:
    """Publishes events the way the simulator does, with increasing seq."""

    def __init__(self, state: RaceState) -> None:
        self.state = state
        self.seq = 0

    def event(self, athlete: int, second: float, kind: str = "running", **fields) -> dict:
        self.seq += 1
        event = {
            "athlete_id": athlete,
            "seq": self.seq,
            "event": kind,
            "time": (START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z"),
            "location": {"latitude": 47.0, "longitude": 11.0},
        }
        event.update(fields)
        return event

    def send(self, athlete: int, second: float, kind: str = "running", **fields):
        return self.state.apply(self.event(athlete, second, kind, **fields))

    def track(self, points, athlete: int, second: float, distance: float, wobble: float = 0.0):
        lat, lon = point_at(points, distance, wobble)
        return self.send(athlete, second, location={"latitude": lat, "longitude": lon})


def run_tracked(points, speeds: dict[int, float], until_s: float, every_s: float = 30.0):
    """Every athlete sends a position (no distance_m, as a real tracker) every `every_s`."""
    state = make_state(points)
    feed = Feed(state)
    for athlete in speeds:
        feed.send(
            athlete,
            0,
            "start",
            location=dict(zip(("latitude", "longitude"), points[0][:2], strict=True)),
        )
    second = every_s
    while second <= until_s:
        for athlete, speed in speeds.items():
            distance = min(speed * second, points[-1][3])
            wobble = 6.0 * math.sin(second * 0.37 + athlete)  # deterministic GPS noise
            feed.track(points, athlete, second, distance, wobble)
        second += every_s
    return state


def board(state: RaceState) -> dict[int, dict]:
    return {a["id"]: a for a in state.leaderboard()}
