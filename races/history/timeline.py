"""A race as it stood at any instant, replayed from its stored positions.

The relay stores every position it accepted, with the distance along the course it gave
it (`Position.distance_m`, never decreasing per athlete). Feeding those positions back
through a fresh `RaceState` (the relay's own code, built by `races.relay.race_setup`)
gives back the leaderboard live showed. Replaying every position is exact but slow
(1,000 athletes x 720 ticks: ~720,000 `apply` calls, seconds); this module feeds only the
positions that can change what the state shows at T, per athlete:

- the last position of its prefix up to T (where it is, its time, speed, status);
- for each timing point and the finish, the first position that reached it and the one
  before (the split is interpolated between those two, as live did);
- its first `finish` or `dnf` position (after it nothing changes but `last_seq`).

Every other position only moves the athlete between those, and the state keeps no trace
of it. "Up to T" is a prefix in `seq` order: positions up to the first one whose time is
after T (a tick's positions were applied together live, whatever their timestamps).
The positions of a race are loaded once per process and extended with the frames stored
since (`Timeline.extend`), so a slider costs the replay of a few thousand positions.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from races import wire
from races.models import LiveRace, Position, Race
from races.relay.race_setup import RaceSetup
from races.relay.race_state import CHECKPOINT_TOLERANCE_M, RaceState
from simulator.clock import iso_z

TERMINAL = ("finish", "dnf")


@dataclass
class Track:
    """One athlete's stored positions in `seq` order, and where they reached each point."""

    rows: list[tuple] = field(default_factory=list)  # seq, time, lat, lon, ele, m, m/s, event
    reach: list[float] = field(default_factory=list)  # running max of the times (epoch s)
    crossings: list[int | None] = field(default_factory=list)
    terminal: int | None = None

    def add(self, row: tuple, marks: list[float]) -> None:
        index = len(self.rows)
        self.rows.append(row)
        stamp = row[1].timestamp()
        self.reach.append(max(stamp, self.reach[-1]) if self.reach else stamp)
        if len(self.crossings) < len(marks):
            self.crossings.extend([None] * (len(marks) - len(self.crossings)))
        for i, mark in enumerate(marks):
            if self.crossings[i] is None and row[5] >= mark - CHECKPOINT_TOLERANCE_M:
                self.crossings[i] = index
        if self.terminal is None and row[7] in TERMINAL:
            self.terminal = index

    def needed(self, until: float) -> list[int]:
        """Indices of the rows to replay for the state at epoch time `until`."""
        end = bisect_right(self.reach, until)  # rows[:end] is the prefix up to T
        if end == 0:
            return []
        last = end - 1 if self.terminal is None else min(end - 1, self.terminal)
        wanted = {last}
        for crossing in self.crossings:
            if crossing is not None and crossing <= last:
                wanted.add(crossing)
                if crossing > 0:
                    wanted.add(crossing - 1)
        return sorted(wanted)


class Timeline:
    """Every stored position of one race (of one generation), by athlete."""

    def __init__(self, race: Race) -> None:
        self.race_id = race.pk
        self.generation = race.generation
        self.setup = RaceSetup.of(race)
        self.started_at = race.started_at
        self.marks = sorted(
            [cp.distance_m for cp in self.setup.checkpoints if cp.kind == "checkpoint"]
            + [self.setup.length_m]
        )
        self.tracks: dict[int, Track] = {a.id: Track() for a in self.setup.athletes}
        self.frame = -1
        self.first_time: datetime | None = None
        self.last_time: datetime | None = None
        self.lock = threading.Lock()

    def extend(self, upto_frame: int) -> None:
        """Load the positions of the frames stored after the last load."""
        rows = Position.objects.filter(race_id=self.race_id, frame__gt=self.frame).order_by("seq")
        if upto_frame >= 0:
            rows = rows.filter(frame__lte=upto_frame)
        columns = ("athlete_id", "seq", "time", "latitude", "longitude", "elevation",
                   "distance_m", "speed_mps", "event")  # fmt: skip
        for athlete_id, *row in rows.values_list(*columns).iterator(chunk_size=20_000):
            track = self.tracks.get(athlete_id)
            if track is not None:
                track.add(tuple(row), self.marks)
                moment = row[1]
                if self.first_time is None or moment < self.first_time:
                    self.first_time = moment
                if self.last_time is None or moment > self.last_time:
                    self.last_time = moment
        self.frame = max(self.frame, upto_frame)

    def state_at(self, at: datetime) -> RaceState:
        """The race state after every position up to `at`, by the relay's code."""
        state = self.setup.new_state()
        until = at.timestamp()
        latest = None
        for athlete_id, track in self.tracks.items():
            needed = track.needed(until)
            for index in needed:
                seq, time, lat, lon, ele, distance, speed, event = track.rows[index]
                state.apply(
                    {"athlete_id": athlete_id, "seq": seq, "event": event, "time": iso_z(time),
                     "location": {"latitude": lat, "longitude": lon}, "elevation": ele,
                     "distance_m": distance, "speed_mps": speed}
                )  # fmt: skip
            if needed:
                reached = track.reach[needed[-1]]
                latest = reached if latest is None or reached > latest else latest
        if latest is not None and self.started_at is not None:
            state.latest_time = datetime.fromtimestamp(latest, tz=self.started_at.tzinfo)
        return state


_timelines: dict[int, Timeline] = {}
_guard = threading.Lock()


def timeline_for(race: Race) -> Timeline:
    """The race's timeline, loaded up to its last stored frame (cached per process)."""
    frame = LiveRace.objects.filter(race=race).values_list("frame", flat=True).first() or 0
    with _guard:
        timeline = _timelines.get(race.pk)
        if timeline is None or timeline.generation != race.generation or frame < timeline.frame:
            timeline = _timelines[race.pk] = Timeline(race)
    with timeline.lock:
        if frame > timeline.frame:
            timeline.extend(frame)
    return timeline


def forget(race_id: int) -> None:
    _timelines.pop(race_id, None)


def race_time(race: Race, at: datetime) -> float | None:
    """Race-clock seconds of a wall-clock time."""
    if race.started_at is None:
        return None
    return round((at - race.started_at).total_seconds(), 1)


def instant(race: Race, seconds: float) -> datetime:
    """The wall-clock time of a race-clock second."""
    return race.started_at + timedelta(seconds=seconds)


def leaderboard_at(race: Race, at: datetime) -> dict:
    """The leaderboard as a `snapshot`-shaped document at `at` (frame = the history's)."""
    timeline = timeline_for(race)
    state = timeline.state_at(at)
    clock = race_time(race, at)
    summary = wire.race_summary(race, clock)
    # Event times are race time (started_at + race seconds, whatever the compression), so
    # the race is over at T when everyone was in by then, as the relay decides it live.
    if race.status in (Race.Status.FINISHED, Race.Status.RUNNING):
        done = state.everyone_done
        summary["status"] = Race.Status.FINISHED if done else Race.Status.RUNNING
    return {
        "at": wire.iso(at),
        "clock_s": clock,
        "race": summary,
        "athletes": sorted(state.leaderboard(), key=wire.leaderboard_sort_key),
    }
