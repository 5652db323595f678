"""Fixes from real trackers as the relay takes them: the rules before the race state.

On a tracked race (`Race.tracking`), an event WITHOUT `seq` on the race's fanout is a
tracker's fix: from the ingest endpoints (OsmAnd, OwnTracks, Traccar, GPX upload) or from
the old system's producers, which send the old contract (athlete name, no bib, no id).
`TrackerIntake.prepare` finds the athlete on the start list (by `athlete_id`, else `bib`,
else the name, case-insensitive and trimmed), checks the fix, and gives it its seq
(`wire.tracker_seq`), so the race state handles it like any event: the same fix again is a
duplicate, an older one is stored as history without moving the athlete back.

The relay is the last line for every producer (the endpoints check too, the old
producers do not), so a fix is refused here, and counted by reason
(`raceweb_relay_tracker_refused_total`), when its athlete is unknown, its time is more
than `TRACKER_FUTURE_TOLERANCE_S` ahead of now or before the race's start, its accuracy
is worse than `TRACKER_MAX_ACCURACY_M`, or it implies running faster than
`TRACKER_MAX_SPEED_MPS` from the athlete's last accepted fix (straight line: a lower bound
of the distance run, so a real athlete is never refused for it).

On a simulated race a seq-less event is refused as before (`seq must be an integer`): only
the simulation moves its athletes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from races import wire
from races.operations import metrics
from races.relay import events
from races.relay.events import InvalidEvent
from races.relay.race_state import Fix, RaceState

REASONS = (
    "unknown_athlete",
    "future",
    "before_start",
    "poor_accuracy",
    "impossible_speed",
    "bad_fix",  # a field a tracker's fix must not have wrong (time, source, battery)
)
SIMULATION_SOURCE = "simulation"  # events with a seq: the built-in simulation's
EARTH_RADIUS_M = 6_371_000.0


class TrackerRefused(InvalidEvent):
    """A tracker's fix the relay refuses or ignores; `reason` is one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TrackerLimits:
    max_speed_mps: float
    max_accuracy_m: float
    future_tolerance_s: float

    @classmethod
    def from_settings(cls) -> TrackerLimits:
        return cls(
            settings.TRACKER_MAX_SPEED_MPS,
            settings.TRACKER_MAX_ACCURACY_M,
            settings.TRACKER_FUTURE_TOLERANCE_S,
        )


@dataclass
class Device:
    """What race control shows of an athlete's tracker: its newest fix's details."""

    source: str
    fix_time: datetime
    battery_pct: float | None = None
    accuracy_m: float | None = None

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "fix_time": wire.iso(self.fix_time),
            "battery_pct": None if self.battery_pct is None else round(self.battery_pct),
            "accuracy_m": None if self.accuracy_m is None else round(self.accuracy_m, 1),
        }


@dataclass
class TrackerIntake:
    """The tracker rules of one tracked race, and its devices as last heard of."""

    state: RaceState
    limits: TrackerLimits = field(default_factory=TrackerLimits.from_settings)
    devices: dict[int, Device] = field(default_factory=dict)

    def __post_init__(self) -> None:
        roster = self.state.roster()
        self._by_bib = {spec.bib: spec.id for spec in roster}
        names = Counter(_name_key(spec.name) for spec in roster)
        # A name two athletes share matches neither: a fix must never move the wrong one.
        self._by_name = {
            _name_key(spec.name): spec.id for spec in roster if names[_name_key(spec.name)] == 1
        }

    def prepare(self, event: Mapping, now: datetime) -> dict:
        """The event with its athlete's id and a seq, or TrackerRefused (counted).
        `remember` its device once the race state took it."""
        try:
            return self._prepare(event, now)
        except TrackerRefused as refused:
            metrics.RELAY_TRACKER_REFUSED.labels(refused.reason).inc()
            raise

    def _prepare(self, event: Mapping, now: datetime) -> dict:
        athlete_id = self._athlete_id(event)
        try:
            time = events.parse_time(event.get("time"))
            accuracy = events.optional_float(event, "accuracy_m")
            battery = events.optional_float(event, "battery_pct")
            latitude, longitude = events.location(event)
        except InvalidEvent as error:
            raise TrackerRefused("bad_fix", str(error)) from error
        source = event.get("source", "contract")
        if source not in wire.TRACKER_SOURCES:
            raise TrackerRefused("bad_fix", f"unknown source {source!r:.40}")
        if battery is not None and not 0.0 <= battery <= 100.0:
            raise TrackerRefused("bad_fix", f"battery_pct {battery} is not 0 to 100")
        if time > now + timedelta(seconds=self.limits.future_tolerance_s):
            raise TrackerRefused("future", f"fix time {wire.iso(time)} is in the future")
        start = self.state.start_time
        if start is not None and time < start:
            raise TrackerRefused("before_start", f"fix time {wire.iso(time)} is before the start")
        if accuracy is not None and accuracy > self.limits.max_accuracy_m:
            raise TrackerRefused("poor_accuracy", f"accuracy {accuracy:.0f} m is too poor")
        self._check_speed(athlete_id, time, latitude, longitude)
        return {**event, "athlete_id": athlete_id, "seq": wire.tracker_seq(athlete_id, time),
                "source": source}  # fmt: skip

    def remember(self, prepared: Mapping, fix: Fix) -> None:
        """Keep the device of a fix the race state took, if it is the athlete's newest."""
        device = self.devices.get(fix.athlete_id)
        if device is None or fix.time >= device.fix_time:
            self.devices[fix.athlete_id] = Device(
                prepared["source"],
                fix.time,
                events.optional_float(prepared, "battery_pct"),
                events.optional_float(prepared, "accuracy_m"),
            )

    def _athlete_id(self, event: Mapping) -> int:
        given = event.get("athlete_id")
        if given is not None:
            if isinstance(given, int) and not isinstance(given, bool):
                if self.state.athlete(given) is not None:
                    return given
        elif event.get("bib") is not None:
            found = self._by_bib.get(str(event["bib"]).strip())
            if found is not None:
                return found
        elif isinstance(event.get("athlete"), str):
            found = self._by_name.get(_name_key(event["athlete"]))
            if found is not None:
                return found
        raise TrackerRefused(
            "unknown_athlete",
            f"athlete not on the start list: id={given!r:.20} bib={event.get('bib')!r:.20} "
            f"name={event.get('athlete')!r:.60}",
        )

    def _check_speed(self, athlete_id: int, time: datetime, lat: float, lon: float) -> None:
        """Refuse a fix the athlete cannot have reached from their last accepted one.

        Only a newer fix is checked: an older one (a late batch) changes nothing live.
        """
        athlete = self.state.athlete(athlete_id)
        if athlete is None or athlete.time is None or athlete.latitude is None:
            return
        seconds = (time - athlete.time).total_seconds()
        if seconds <= 0:
            return
        metres = _haversine_m(athlete.latitude, athlete.longitude, lat, lon)
        if metres > self.limits.max_speed_mps * seconds:
            raise TrackerRefused(
                "impossible_speed", f"{metres:.0f} m in {seconds:.0f} s from the last fix"
            )


def apply(state: RaceState, tracker: TrackerIntake | None, data: Mapping) -> Fix | None:
    """Apply one contract event; a seq-less one on a tracked race goes through the
    tracker rules first. Counts accepted positions by source."""
    if tracker is None or data.get("seq") is not None:
        fix = state.apply(data)
        if fix is not None:
            metrics.RELAY_POSITIONS_BY_SOURCE.labels(SIMULATION_SOURCE).inc()
        return fix
    prepared = tracker.prepare(data, datetime.now(UTC))
    fix = state.apply(prepared)
    if fix is not None:
        tracker.remember(prepared, fix)
        metrics.RELAY_POSITIONS_BY_SOURCE.labels(prepared["source"]).inc()
    return fix


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
