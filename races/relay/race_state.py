"""Live state of one race: where every athlete is along the course, and the leaderboard.

Plain Python (no Django, no I/O), so it is fast and testable on its own. The relay feeds it
contract events (see DESIGN.md, "wire contract") one at a time with `RaceState.apply`, and
a few times a second asks `RaceState.take_changes` for the athletes a frame must carry.

Distance along the course:
- Events from the simulator carry `distance_m`; it is taken as is.
- Events without it (real trackers) are snapped onto the course polyline, *forward only*:
  the search starts at the athlete's last distance and reaches only as far as they can
  have run since then. That is what keeps a loop course (start next to the finish) and an
  out-and-back course (the same trail twice) from putting an athlete at the wrong end.
- Distance never decreases.

Ranking: finished athletes by finish time, then running athletes by distance (earlier
arrival first on a tie), then those not started, then DNF. Only finished and running
athletes get a rank number. The gap to the leader is time: how much later the athlete
reached their current distance than the leader did (the leader's passage times are
interpolated between the leader's splits and current position); finished athletes compare
finish times.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

NOT_STARTED = "not_started"
RUNNING = "running"
FINISHED = "finished"
DNF = "dnf"

EVENT_KINDS = frozenset({"start", "running", "checkpoint", "finish", "dnf"})
EARTH_RADIUS_M = 6_378_137.0  # as gpxpy, which measured the course

# Snapping tolerances (metres). A fix further than OFF_COURSE_M from the course keeps the
# athlete's last distance. Candidates within AMBIGUITY_M of the best one count as "the
# athlete could be here"; the first such stretch along the course wins (forward only).
OFF_COURSE_M = 250.0
AMBIGUITY_M = 25.0
BACKTRACK_M = 50.0
REACH_SLACK_M = 200.0
SNAPPED_FINISH_RADIUS_M = 20.0
# Distances arrive rounded (the simulator sends centimetres); a checkpoint this close
# ahead counts as reached.
CHECKPOINT_TOLERANCE_M = 0.5
DEFAULT_MAX_SPEED_MPS = 12.0


# Positions store seq in a 64-bit column: a larger one would fail the whole batch's insert.
MAX_SEQ = 2**63 - 1


class InvalidEvent(ValueError):
    """An event the relay cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class CheckpointSpec:
    name: str
    distance_m: float
    kind: str = "checkpoint"


@dataclass(frozen=True, slots=True)
class AthleteSpec:
    id: int
    bib: str
    name: str
    gender: str
    category: str = ""


@dataclass(frozen=True, slots=True)
class Fix:
    """A position the relay stores: the event, validated, with its distance along course."""

    athlete_id: int
    seq: int
    time: datetime
    latitude: float
    longitude: float
    elevation: float | None
    distance_m: float
    speed_mps: float | None
    event: str


@dataclass(frozen=True, slots=True)
class FrameChanges:
    """The athletes one frame carries: `full` to store, `wire` to send (see take_changes)."""

    full: list[dict]
    wire: list[dict]


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


class _Athlete:
    __slots__ = (
        "distance_m",
        "elapsed_s",
        "elevation",
        "finish_s",
        "gap_s",
        "last_seq",
        "latitude",
        "longitude",
        "next_checkpoint",
        "public",
        "published",
        "published_ranking",
        "rank",
        "rank_category",
        "rank_gender",
        "sort_bib",
        "spec",
        "speed_mps",
        "splits",
        "splits_changed",
        "status",
        "time",
        "time_text",
    )

    def __init__(self, spec: AthleteSpec) -> None:
        self.spec = spec
        self.sort_bib = (0, int(spec.bib), "") if spec.bib.isdigit() else (1, 0, spec.bib)
        self.status = NOT_STARTED
        self.distance_m = 0.0
        self.elapsed_s: float | None = None
        self.latitude: float | None = None
        self.longitude: float | None = None
        self.elevation: float | None = None
        self.speed_mps: float | None = None
        self.time: datetime | None = None
        self.time_text: str | None = None
        self.finish_s: float | None = None
        self.last_seq = -1
        self.splits: list[dict] = []
        self.next_checkpoint = 0  # index into the race's intermediate checkpoints
        self.splits_changed = False
        self.rank: int | None = None
        self.rank_gender: int | None = None
        self.rank_category: int | None = None
        self.gap_s: float | None = None
        self.published_ranking: tuple = (None, None, None, None)
        self.published: dict | None = None  # the public form the last frame was built from
        self.public: dict | None = None

    def sort_key(self) -> tuple:
        if self.status == FINISHED:
            return (0, self.finish_s, 0.0, self.sort_bib)
        if self.status == RUNNING:
            return (1, -self.distance_m, self.elapsed_s or 0.0, self.sort_bib)
        if self.status == NOT_STARTED:
            return (2, 0.0, 0.0, self.sort_bib)
        return (3, -self.distance_m, 0.0, self.sort_bib)


class RaceState:
    """Everything the relay knows about one running race, updated event by event."""

    def __init__(
        self,
        *,
        length_m: float,
        checkpoints: Iterable[CheckpointSpec],
        athletes: Iterable[AthleteSpec],
        start_time: datetime | None = None,
        course: CourseLine | None = None,
        max_speed_mps: float = DEFAULT_MAX_SPEED_MPS,
    ) -> None:
        self.length_m = float(length_m)
        self.start_time = start_time
        self.course = course
        self.max_speed_mps = max_speed_mps
        ordered = sorted(checkpoints, key=lambda cp: cp.distance_m)
        self.finish_checkpoint = next((cp for cp in ordered if cp.kind == "finish"), None)
        self._timing_points = [cp for cp in ordered if cp.kind == "checkpoint"]
        self._athletes: dict[int, _Athlete] = {a.id: _Athlete(a) for a in athletes}
        self._by_bib = {a.spec.bib: a for a in self._athletes.values()}
        self._by_name = {a.spec.name: a for a in self._athletes.values()}
        self._order: list[_Athlete] = sorted(self._athletes.values(), key=_Athlete.sort_key)
        self._moved: set[int] = set()
        self._ranking_stale = True
        self.latest_time: datetime | None = None

    # ---- input -------------------------------------------------------------------------

    def apply(self, event: Mapping) -> Fix | None:
        """Take one contract event into the state.

        Returns the validated `Fix` to store, or None for a duplicate or stale event (its
        `seq` is not newer than the athlete's last one). Raises InvalidEvent when the event
        is unusable (unknown athlete, missing fields, impossible values).
        """
        athlete = self._find_athlete(event)
        seq = _required_int(event, "seq")
        if seq <= athlete.last_seq:
            return None
        kind = event.get("event")
        if not isinstance(kind, str) or kind not in EVENT_KINDS:
            raise InvalidEvent(f"unknown event kind {kind!r}")
        time_text = event.get("time")
        time = _parse_time(time_text)
        latitude, longitude = _location(event)
        elevation = _optional_float(event, "elevation")
        speed = _optional_float(event, "speed_mps")
        if self.start_time is None:
            self.start_time = time
        elapsed = (time - self.start_time).total_seconds()

        athlete.last_seq = seq
        if athlete.status in (FINISHED, DNF):
            # Trackers keep sending after the line; store those positions, change nothing.
            return Fix(athlete.spec.id, seq, time, latitude, longitude, elevation,
                       athlete.distance_m, speed, kind)  # fmt: skip

        distance = self._distance(athlete, event, latitude, longitude, time)
        self._record_splits(athlete, distance, elapsed)
        athlete.latitude, athlete.longitude, athlete.elevation = latitude, longitude, elevation
        athlete.speed_mps = speed
        athlete.time, athlete.time_text, athlete.elapsed_s = time, str(time_text), elapsed
        athlete.distance_m = distance
        if kind == "dnf":
            athlete.status = DNF
        elif kind == "finish" or self._reached_finish(event, distance):
            self._finish(athlete, elapsed)
        else:
            athlete.status = RUNNING
        if self.latest_time is None or time > self.latest_time:
            self.latest_time = time
        self._touch(athlete)
        return Fix(athlete.spec.id, seq, time, latitude, longitude, elevation,
                   athlete.distance_m, speed, kind)  # fmt: skip

    def restore(self, public: Mapping, last_seq: int) -> None:
        """Put back an athlete's state from its stored public form (a relay restart)."""
        athlete = self._athletes.get(public["id"])
        if athlete is None:
            return
        athlete.last_seq = last_seq
        athlete.status = public["status"]
        athlete.distance_m = float(public["distance_m"] or 0.0)
        athlete.latitude, athlete.longitude = public.get("lat"), public.get("lon")
        athlete.elevation, athlete.speed_mps = public.get("ele"), public.get("speed_mps")
        athlete.time_text = public.get("time")
        athlete.time = _parse_time(athlete.time_text) if athlete.time_text else None
        athlete.elapsed_s = public.get("elapsed_s")
        athlete.splits = [dict(split) for split in public.get("splits") or []]
        passed = {split["name"] for split in athlete.splits}
        athlete.next_checkpoint = sum(1 for cp in self._timing_points if cp.name in passed)
        if athlete.status == FINISHED:
            athlete.finish_s = athlete.splits[-1]["split_s"] if athlete.splits else None
            if athlete.finish_s is None:
                athlete.finish_s = athlete.elapsed_s
        if athlete.time and (self.latest_time is None or athlete.time > self.latest_time):
            self.latest_time = athlete.time
        athlete.public = None
        self._ranking_stale = True

    # ---- output ------------------------------------------------------------------------

    def take_changes(self) -> FrameChanges:
        """Athletes to put in the next frame: those that moved, and those whose rank or gap
        changed because others moved. `full` has their whole public form (to store);
        `wire` only `id` and the fields that changed since the last frame (clients and
        hubs merge athlete objects by id), so an update is a fraction of a snapshot."""
        self._rerank()
        full, wire = [], []
        for athlete in self._order:
            ranking = (athlete.rank, athlete.rank_gender, athlete.rank_category, athlete.gap_s)
            if athlete.spec.id not in self._moved and ranking == athlete.published_ranking:
                continue
            athlete.published_ranking = ranking
            public = self._public(athlete)
            full.append(public)
            sent = athlete.published or {}
            changed = {"id": public["id"]}
            for key, value in public.items():
                if key == "splits":  # one list, appended to: its flag says it changed
                    if athlete.splits_changed:
                        changed[key] = value
                elif key not in sent or sent[key] != value:
                    changed[key] = value
            athlete.splits_changed = False
            athlete.published = public
            if len(changed) > 1:
                wire.append(changed)
        self._moved.clear()
        return FrameChanges(full, wire)

    def leaderboard(self) -> list[dict]:
        """Every athlete, full public form (with splits), in leaderboard order."""
        self._rerank()
        return [self._public(athlete) for athlete in self._order]

    def last_seq(self, athlete_id: int) -> int:
        """seq of the athlete's newest accepted event (-1 before the first)."""
        return self._athletes[athlete_id].last_seq

    def last_seqs(self) -> dict[int, int]:
        return {a.spec.id: a.last_seq for a in self._athletes.values() if a.last_seq >= 0}

    @property
    def everyone_done(self) -> bool:
        """True once every athlete on the start list has finished or dropped out."""
        return bool(self._athletes) and all(
            a.status in (FINISHED, DNF) for a in self._athletes.values()
        )

    @property
    def clock_s(self) -> float | None:
        """Race-clock seconds of the newest event seen."""
        if self.latest_time is None or self.start_time is None:
            return None
        return round((self.latest_time - self.start_time).total_seconds(), 1)

    # ---- internals ---------------------------------------------------------------------

    def _find_athlete(self, event: Mapping) -> _Athlete:
        athlete_id = event.get("athlete_id")
        if athlete_id is not None:
            if isinstance(athlete_id, bool) or not isinstance(athlete_id, int):
                raise InvalidEvent(f"athlete_id must be an integer, not {athlete_id!r:.40}")
            athlete = self._athletes.get(athlete_id)
        elif event.get("bib") is not None:
            athlete = self._by_bib.get(str(event["bib"]))
        elif isinstance(event.get("athlete"), str):
            athlete = self._by_name.get(event["athlete"])
        else:
            athlete = None
        if athlete is None:
            raise InvalidEvent(
                f"athlete not on the start list: id={athlete_id!r} bib={event.get('bib')!r} "
                f"name={event.get('athlete')!r}"
            )
        return athlete

    def _distance(
        self, athlete: _Athlete, event: Mapping, lat: float, lon: float, time: datetime
    ) -> float:
        previous = athlete.distance_m
        given = _optional_float(event, "distance_m")
        if given is not None:
            return max(previous, min(given, self.length_m))
        if event.get("event") == "start":
            return previous
        if self.course is None:
            raise InvalidEvent("event has no distance_m and the race has no course to snap to")
        since = athlete.time or self.start_time or time
        reach = self.max_speed_mps * max((time - since).total_seconds(), 0.0) + REACH_SLACK_M
        snapped = self.course.snap(lat, lon, previous - BACKTRACK_M, previous + reach)
        return previous if snapped is None else max(previous, snapped)

    def _reached_finish(self, event: Mapping, distance: float) -> bool:
        if event.get("distance_m") is not None:
            return distance >= self.length_m
        return distance >= self.length_m - SNAPPED_FINISH_RADIUS_M

    def _record_splits(self, athlete: _Athlete, distance: float, elapsed: float) -> None:
        before = athlete.distance_m
        previous_elapsed = athlete.elapsed_s if athlete.elapsed_s is not None else 0.0
        timing = self._timing_points
        while athlete.next_checkpoint < len(timing):
            checkpoint = timing[athlete.next_checkpoint]
            if checkpoint.distance_m > distance + CHECKPOINT_TOLERANCE_M:
                break
            span = distance - before
            fraction = (
                1.0 if span <= 0 else min(max((checkpoint.distance_m - before) / span, 0.0), 1.0)
            )
            split = previous_elapsed + fraction * (elapsed - previous_elapsed)
            self._add_split(athlete, checkpoint.name, checkpoint.distance_m, split)
            athlete.next_checkpoint += 1

    def _finish(self, athlete: _Athlete, elapsed: float) -> None:
        athlete.status = FINISHED
        athlete.distance_m = self.length_m
        athlete.finish_s = elapsed
        name = self.finish_checkpoint.name if self.finish_checkpoint else "Finish"
        self._add_split(athlete, name, self.length_m, elapsed)

    @staticmethod
    def _add_split(athlete: _Athlete, name: str, distance: float, split: float) -> None:
        athlete.splits.append(
            {"name": name, "distance_m": round(distance, 1), "split_s": round(split, 1)}
        )
        athlete.splits_changed = True

    def _touch(self, athlete: _Athlete) -> None:
        athlete.public = None
        self._moved.add(athlete.spec.id)
        self._ranking_stale = True

    def _rerank(self) -> None:
        if not self._ranking_stale:
            return
        self._ranking_stale = False
        self._order.sort(key=_Athlete.sort_key)
        leader_times = self._leader_passage_times()
        rank = 0
        per_gender: dict[str, int] = {}
        per_category: dict[str, int] = {}
        for athlete in self._order:
            if athlete.status not in (FINISHED, RUNNING):
                ranking = (None, None, None, None)
            else:
                rank += 1
                gender, category = athlete.spec.gender, athlete.spec.category
                per_gender[gender] = per_gender.get(gender, 0) + 1
                per_category[category] = per_category.get(category, 0) + 1
                ranking = (
                    rank,
                    per_gender[gender],
                    per_category[category] if category else None,
                    self._gap(athlete, leader_times),
                )
            if ranking != (athlete.rank, athlete.rank_gender, athlete.rank_category, athlete.gap_s):
                athlete.rank, athlete.rank_gender, athlete.rank_category, athlete.gap_s = ranking
                athlete.public = None

    def _leader_passage_times(self) -> tuple[list[float], list[float]] | None:
        leader = self._order[0] if self._order else None
        if leader is None or leader.status not in (FINISHED, RUNNING):
            return None
        distances, times = [0.0], [0.0]
        for split in leader.splits:
            if split["distance_m"] > distances[-1]:
                distances.append(split["distance_m"])
                times.append(split["split_s"])
        if leader.status == RUNNING and leader.distance_m > distances[-1]:
            distances.append(leader.distance_m)
            times.append(leader.elapsed_s or 0.0)
        return distances, times

    def _gap(self, athlete: _Athlete, leader_times: tuple | None) -> float | None:
        if leader_times is None or athlete is self._order[0]:
            return 0.0 if leader_times is not None else None
        leader = self._order[0]
        if athlete.status == FINISHED:
            return round(athlete.finish_s - leader.finish_s, 1)
        distances, times = leader_times
        at = athlete.distance_m
        i = bisect_left(distances, at)
        if i >= len(distances):
            leader_time = times[-1]
        elif distances[i] == at or i == 0:
            leader_time = times[i]
        else:
            d0, d1, t0, t1 = distances[i - 1], distances[i], times[i - 1], times[i]
            leader_time = t0 + (at - d0) / (d1 - d0) * (t1 - t0)
        return round(max((athlete.elapsed_s or 0.0) - leader_time, 0.0), 1)

    def _public(self, athlete: _Athlete) -> dict:
        if athlete.public is None:
            athlete.public = _public_form(athlete, self.length_m)
        return athlete.public


STATUS_ORDER = {FINISHED: 0, RUNNING: 1, NOT_STARTED: 2, DNF: 3}


def leaderboard_sort_key(public: Mapping) -> tuple:
    """Leaderboard order of athletes in their public form (stored or received)."""
    bib = str(public.get("bib") or "")
    return (
        STATUS_ORDER.get(public.get("status"), 4),
        public.get("rank") or 0,
        -(public.get("distance_m") or 0.0),
        (0, int(bib), "") if bib.isdigit() else (1, 0, bib),
    )


def not_started_public(spec: AthleteSpec) -> dict:
    """The public form of an athlete the relay has not heard of yet."""
    return _public_form(_Athlete(spec), 0.0)


def _public_form(athlete: _Athlete, length_m: float) -> dict:
    """An athlete as the spectator protocol's ATHLETE object (docs/ARCHITECTURE.md)."""
    spec = athlete.spec
    pace = eta = None
    if athlete.status == FINISHED and athlete.finish_s is not None and length_m > 0:
        pace, eta = athlete.finish_s / (length_m / 1000.0), 0.0
    elif athlete.status == RUNNING and athlete.distance_m >= 100.0 and athlete.elapsed_s:
        pace = athlete.elapsed_s / (athlete.distance_m / 1000.0)
        eta = (length_m - athlete.distance_m) / 1000.0 * pace
    return {
        "id": spec.id,
        "bib": spec.bib,
        "name": spec.name,
        "gender": spec.gender,
        "category": spec.category,
        "lat": _round(athlete.latitude, 6),
        "lon": _round(athlete.longitude, 6),
        "ele": _round(athlete.elevation, 1),
        "distance_m": round(athlete.distance_m, 1),
        "speed_mps": _round(athlete.speed_mps, 2),
        "status": athlete.status,
        "rank": athlete.rank,
        "rank_gender": athlete.rank_gender,
        "rank_category": athlete.rank_category,
        "gap_s": athlete.gap_s,
        "pace_s_per_km": _round(pace, 1),
        "eta_s": _round(eta, 0),
        "elapsed_s": _round(athlete.elapsed_s, 1),
        "last_checkpoint": athlete.splits[-1] if athlete.splits else None,
        "splits": athlete.splits,
        "time": athlete.time_text,
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidEvent("time must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidEvent(f"time {value!r} is not ISO 8601") from error
    if parsed.tzinfo is None:
        raise InvalidEvent(f"time {value!r} has no timezone")
    return parsed


def _location(event: Mapping) -> tuple[float, float]:
    location = event.get("location")
    if not isinstance(location, Mapping):
        raise InvalidEvent("location must be an object with latitude and longitude")
    latitude = _optional_float(location, "latitude")
    longitude = _optional_float(location, "longitude")
    if latitude is None or longitude is None:
        raise InvalidEvent("location needs latitude and longitude")
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise InvalidEvent(f"location {latitude}, {longitude} is out of range")
    return latitude, longitude


def _optional_float(data: Mapping, key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{key} must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidEvent(f"{key} must be finite")
    return value


def _required_int(data: Mapping, key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"{key} must be an integer")
    if not 0 <= value <= MAX_SEQ:
        raise InvalidEvent(f"{key} {value:.3g} is outside 0 to 2**63 - 1")
    return value
