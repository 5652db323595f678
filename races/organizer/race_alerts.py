"""Race control's alerts: the athletes an organizer must look at now, and why.

One rule per kind, each a plain function of an athlete's public form (races.wire ATHLETE),
what the watch remembers about them (`AthleteWatch`), the race's "now" and the
thresholds (settings `RACE_ALERT_*`, docs/ARCHITECTURE.md):

- `no_position`: a running athlete whose last position is older than N seconds of race time;
- `not_moving`: positions keep coming but the athlete has not advanced N metres for N seconds;
- `off_course`: the last position is more than N metres from the course at their distance;
- `going_backwards`: the last position lies more than N metres behind their distance;
- `missed_checkpoint`: a checkpoint passed with no position within N metres of it.

`RaceWatch` is fed the athletes of every frame (`observe`) and asked `check(now)` about once
a second; it runs in the relay, which alone sees every frame of a race, so an episode (an
athlete entering one alert kind) is counted once in Prometheus however many pages watch.
Plain Python (no Django), like the race state.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from races.wire import RUNNING, iso

KINDS = ("no_position", "not_moving", "off_course", "going_backwards", "missed_checkpoint")
EARTH_RADIUS_M = 6_378_137.0
BACKWARDS_LOOK_M = 3000.0  # how far behind an athlete's distance the backwards rule looks
# A position this close to the course at the athlete's distance is on track: the common
# case costs a bisect and a distance; only the others are snapped over the course behind
# them (a loop over up to BACKWARDS_LOOK_M of course points).
ON_TRACK_M = 30.0


@dataclass(frozen=True)
class Thresholds:
    no_position_s: float = 300.0
    not_moving_s: float = 300.0
    not_moving_m: float = 25.0
    off_course_m: float = 150.0
    backwards_m: float = 200.0
    checkpoint_gap_m: float = 500.0

    @classmethod
    def from_settings(cls) -> Thresholds:
        from django.conf import settings

        return cls(
            no_position_s=settings.RACE_ALERT_NO_POSITION_S,
            not_moving_s=settings.RACE_ALERT_NOT_MOVING_S,
            not_moving_m=settings.RACE_ALERT_NOT_MOVING_M,
            off_course_m=settings.RACE_ALERT_OFF_COURSE_M,
            backwards_m=settings.RACE_ALERT_BACKWARDS_M,
            checkpoint_gap_m=settings.RACE_ALERT_CHECKPOINT_GAP_M,
        )


@dataclass(frozen=True)
class Alert:
    athlete_id: int
    bib: str
    name: str
    kind: str
    since: datetime  # race time the condition began: "how long" is now - since
    lat: float | None
    lon: float | None
    distance_m: float
    detail: str

    def as_dict(self) -> dict:
        return {
            "athlete_id": self.athlete_id,
            "bib": self.bib,
            "name": self.name,
            "kind": self.kind,
            "since": iso(self.since),
            "lat": self.lat,
            "lon": self.lon,
            "distance_m": round(self.distance_m, 1),
            "detail": self.detail,
        }


@dataclass
class AthleteWatch:
    """What the rules need beyond the public form, updated frame by frame."""

    moved_at: datetime | None = None  # when the athlete last advanced not_moving_m
    moved_from_m: float = 0.0
    last_distance_m: float | None = None
    off_since: datetime | None = None
    off_by_m: float = 0.0
    back_since: datetime | None = None
    back_by_m: float = 0.0
    splits_seen: int = 0
    missed: list[tuple[str, datetime, float]] = field(default_factory=list)


class CourseGeometry:
    """Where a distance along the course is, and how far a point is from it."""

    def __init__(self, points: Sequence[Sequence[float | None]]) -> None:
        self.points = points
        self.distances = [float(p[3]) for p in points]

    def at(self, distance_m: float) -> tuple[float, float]:
        i = bisect_left(self.distances, distance_m)
        if i <= 0:
            return self.points[0][0], self.points[0][1]
        if i >= len(self.points):
            return self.points[-1][0], self.points[-1][1]
        (lat0, lon0, *_), (lat1, lon1, *_) = self.points[i - 1], self.points[i]
        d0, d1 = self.distances[i - 1], self.distances[i]
        t = 0.0 if d1 == d0 else (distance_m - d0) / (d1 - d0)
        return lat0 + t * (lat1 - lat0), lon0 + t * (lon1 - lon0)

    def offset_m(self, lat: float, lon: float, distance_m: float) -> float:
        return metres_between(lat, lon, *self.at(distance_m))


def metres_between(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    """Equirectangular distance: exact enough for the tens to hundreds of metres here."""
    x = math.radians(lon1 - lon0) * math.cos(math.radians((lat0 + lat1) / 2))
    y = math.radians(lat1 - lat0)
    return EARTH_RADIUS_M * math.hypot(x, y)


def _alert(athlete: Mapping, kind: str, since: datetime, detail: str) -> Alert:
    return Alert(
        athlete["id"], str(athlete["bib"]), athlete["name"], kind, since,
        athlete.get("lat"), athlete.get("lon"), athlete.get("distance_m") or 0.0, detail,
    )  # fmt: skip


# ---- the rules -------------------------------------------------------------------------


def no_position(a: Mapping, w: AthleteWatch, now: datetime, t: Thresholds) -> Alert | None:
    last = _time(a)
    if a["status"] != RUNNING or last is None or (now - last).total_seconds() < t.no_position_s:
        return None
    return _alert(a, "no_position", last, "no position since")


def not_moving(a: Mapping, w: AthleteWatch, now: datetime, t: Thresholds) -> Alert | None:
    last = _time(a)
    if a["status"] != RUNNING or w.moved_at is None or last is None or last <= w.moved_at:
        return None  # no newer position: that is the no_position rule's case
    if (now - w.moved_at).total_seconds() < t.not_moving_s:
        return None
    return _alert(a, "not_moving", w.moved_at, f"less than {t.not_moving_m:.0f} m since")


def off_course(a: Mapping, w: AthleteWatch, now: datetime, t: Thresholds) -> Alert | None:
    if a["status"] != RUNNING or w.off_since is None:
        return None
    return _alert(a, "off_course", w.off_since, f"{w.off_by_m:.0f} m from the course")


def going_backwards(a: Mapping, w: AthleteWatch, now: datetime, t: Thresholds) -> Alert | None:
    if a["status"] != RUNNING or w.back_since is None:
        return None
    return _alert(a, "going_backwards", w.back_since, f"{w.back_by_m:.0f} m back along the course")


def missed_checkpoint(a: Mapping, w: AthleteWatch, now: datetime, t: Thresholds) -> Alert | None:
    if not w.missed:
        return None
    names = ", ".join(name for name, _, _ in w.missed)
    nearest = min(nearest for _, _, nearest in w.missed)
    detail = f"{names}: nearest position {nearest:.0f} m away"
    return _alert(a, "missed_checkpoint", w.missed[0][1], detail)


RULES: tuple[Callable[..., Alert | None], ...] = (
    no_position, not_moving, off_course, going_backwards, missed_checkpoint,
)  # fmt: skip


# ---- the watch over one race -------------------------------------------------------------


class RaceWatch:
    """Every athlete's watch state, the alerts in force, and episode counting."""

    def __init__(
        self,
        thresholds: Thresholds,
        course_points: Sequence[Sequence[float | None]] | None = None,
        checkpoints: Iterable[tuple[str, float]] = (),
        on_episode: Callable[[str], None] | None = None,
        snap_behind: Callable[[float, float, float, float], float | None] | None = None,
    ) -> None:
        self.thresholds = thresholds
        self.course = CourseGeometry(course_points) if course_points else None
        self.checkpoints = sorted(checkpoints, key=lambda cp: cp[1])
        self.on_episode = on_episode or (lambda kind: None)
        self.snap_behind = snap_behind  # CourseLine.snap, for the backwards rule
        self.athletes: dict[int, Mapping] = {}  # kept, not copied: read-only here
        self.watches: dict[int, AthleteWatch] = {}
        self.active: set[tuple[int, str]] = set()

    def observe(self, athletes: Iterable[Mapping]) -> None:
        """Athletes of one frame, full public form (RaceState.take_changes().full)."""
        for athlete in athletes:
            watch = self.watches.setdefault(athlete["id"], AthleteWatch())
            self.athletes[athlete["id"]] = athlete  # a new dict per change (RaceState)
            self._update(athlete, watch)

    def check(self, now: datetime) -> list[Alert]:
        """The alerts in force at race time `now`, oldest first; counts new episodes."""
        alerts = []
        for athlete_id, athlete in self.athletes.items():
            watch = self.watches[athlete_id]
            for rule in RULES:
                alert = rule(athlete, watch, now, self.thresholds)
                if alert is not None:
                    alerts.append(alert)
        active = {(a.athlete_id, a.kind) for a in alerts}
        for _, kind in sorted(active - self.active):
            self.on_episode(kind)
        self.active = active
        return sorted(alerts, key=lambda a: (a.since, a.bib, a.kind))

    def _update(self, athlete: Mapping, watch: AthleteWatch) -> None:
        t = self.thresholds
        time, distance = _time(athlete), float(athlete.get("distance_m") or 0.0)
        lat, lon = athlete.get("lat"), athlete.get("lon")
        if time is None or athlete["status"] != RUNNING:
            watch.off_since = watch.back_since = None
        else:
            if watch.moved_at is None or distance - watch.moved_from_m >= t.not_moving_m:
                watch.moved_at, watch.moved_from_m = time, distance
            if self.course is not None and lat is not None and lon is not None:
                offset, behind = self.course.offset_m(lat, lon, distance), 0.0
                if offset > ON_TRACK_M:  # off course or behind: find where (costlier)
                    near = self._near_m(lat, lon, distance)
                    if near is not None:
                        offset = self.course.offset_m(lat, lon, near)
                        behind = distance - near
                watch.off_by_m, watch.back_by_m = offset, behind
                if offset >= t.off_course_m:
                    watch.off_since = watch.off_since or time
                else:
                    watch.off_since = None
                watch.back_since = (watch.back_since or time) if behind >= t.backwards_m else None
        self._check_splits(athlete, watch, time, distance)
        watch.last_distance_m = distance

    def _near_m(self, lat: float, lon: float, distance: float) -> float | None:
        """The nearest course distance at or behind the athlete's (None: far off course)."""
        if self.snap_behind is None:
            return None
        return self.snap_behind(lat, lon, max(distance - BACKWARDS_LOOK_M, 0.0), distance + 50.0)

    def _check_splits(
        self, athlete: Mapping, watch: AthleteWatch, time: datetime | None, distance: float
    ) -> None:
        splits = athlete.get("splits") or []
        before = watch.last_distance_m
        if before is not None and time is not None:
            positions = dict(self.checkpoints)
            for split in splits[watch.splits_seen :]:
                at = positions.get(split["name"])
                if at is None:
                    continue
                nearest = min(at - before, distance - at)
                if nearest > self.thresholds.checkpoint_gap_m:
                    watch.missed.append((split["name"], time, nearest))
        watch.splits_seen = len(splits)


def race_now(
    started_at: datetime | None, wall_now: datetime, compression: float, latest: datetime | None
) -> datetime | None:
    """The race's "now" in race time: the wall clock at the race's pace from its start, or
    the newest position's time when the race runs ahead of it (a replayed backlog)."""
    if started_at is None:
        return latest
    clock = started_at + (wall_now - started_at) * max(compression, 1.0)
    return max(clock, latest) if latest is not None else clock


def _time(athlete: Mapping) -> datetime | None:
    text = athlete.get("time")
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
