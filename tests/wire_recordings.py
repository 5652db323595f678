"""Recorded races for the wire conformance test: snapshots and the numbered updates between.

The races are run by the real code, without a broker or a database: the simulator makes
the events, `RaceState.apply` / `take_changes` make the frames exactly as `RelayCore`
does, and a dict of stored athlete states stands in for `LiveAthlete` (the snapshot is
built from it the way `races.spectators.snapshots.read_snapshot` builds it). Everything is
drawn from fixed seeds, so the recording is deterministic.

    python -m tests.wire_recordings   # rewrites tests/fixtures/wire_conformance.json

The committed file is what `static/js/state.js` is checked against in Chromium; the Python
test checks both the committed file and a fresh recording.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import gpxpy

from races import wire, wire_v2
from races.relay.athlete_state import AthleteSpec, CheckpointSpec
from races.relay.course_line import CourseLine
from races.relay.race_state import RaceState
from simulator import pacing
from simulator.effort import CourseEffort
from simulator.geometry import Course
from simulator.race import CheckpointSpec as SimulatedCheckpoint
from simulator.race import RaceSimulation

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "wire_conformance.json"
LOOP_GPX = ROOT / "samples" / "gpx" / "trailrun-vtr-classic-2019.gpx"  # start next to finish
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SNAPSHOT_EVERY = 6  # frames; the last frame of a run always has one too
NAMES = [
    ("Ada Lovelace", "female", "W30"),
    ("Bob Müller", "male", "M40"),
    ("Cleo Ørsted", "female", ""),
    ("Dan Walker", "male", "M40"),
    ("Eva Nováková", "female", "W50"),
    ("Finn O'Brien", "male", ""),
    ("Gül Yildiz", "female", "W30"),
    ("Hiro Tanaka", "male", "M20"),
]


def loop_course() -> list[list[float]]:
    """`[lat, lon, ele, distance_m]` of the loop course, like `Course.points`."""
    with LOOP_GPX.open(encoding="utf-8-sig") as handle:
        gpx = gpxpy.parse(handle)
    latlons = [(p.latitude, p.longitude, p.elevation or 0.0) for t in gpx.tracks
               for s in t.segments for p in s.points]  # fmt: skip
    points, total = [], 0.0
    for i, (lat, lon, ele) in enumerate(latlons):
        if i:
            total += gpxpy.geo.haversine_distance(latlons[i - 1][0], latlons[i - 1][1], lat, lon)
        points.append([lat, lon, ele, total])
    return points


class Recorder:
    """One race as the relay runs it, frame by frame, with what a spectator would get."""

    def __init__(self, points: list[list[float]], athletes: list[AthleteSpec], name: str):
        self.points, self.athletes, self.name = points, athletes, name
        length = points[-1][3]
        self.checkpoints = [
            CheckpointSpec("Start", 0.0, "start"),
            *(CheckpointSpec(f"CP{i}", i * 3000.0) for i in range(1, int(length // 3000) + 1)),
            CheckpointSpec("Finish", length, "finish"),
        ]
        self.runs: list[dict] = []
        # Per run, each update as the relay encodes it in `raceweb.v2` (not in the fixture).
        self.compact_runs: list[list[bytes]] = []

    def new_run(self) -> None:
        """A start, or a restart after a reset: fresh state, frames from 1, snapshot 0."""
        self.state = RaceState(
            length_m=self.points[-1][3],
            checkpoints=self.checkpoints,
            athletes=self.athletes,
            start_time=START,
            course=CourseLine(self.points),
            effort=CourseEffort.of_points(self.points, self.points[-1][3]),
        )
        self.stored: dict[int, dict] = {}
        self.frame = 0
        self.run = {"snapshots": [self.snapshot()], "updates": []}
        self.runs.append(self.run)
        self.compact_runs.append([])

    def frame_of(self, events: list[dict]) -> None:
        """One relay frame: apply, take the changes, store, send (if there is anything)."""
        fixes = [fix for event in events if (fix := self.state.apply(event)) is not None]
        changes = self.state.take_changes()
        if not fixes and not changes.full:
            return
        self.frame += 1
        for athlete in changes.full:  # stored as JSON, like LiveAthlete.state
            self.stored[athlete["id"]] = json.loads(wire.dumps(athlete))
        update = wire.update_message(self.frame, self.state.clock_s, changes.wire)
        self.run["updates"].append(json.loads(wire.dumps(update)))
        compact = wire_v2.encode_update(changes.previous, update, repeats=False)
        self.compact_runs[-1].append(compact)
        if self.frame % SNAPSHOT_EVERY == 0:
            self.run["snapshots"].append(self.snapshot())

    def end_run(self) -> None:
        if self.run["snapshots"][-1]["frame"] != self.frame:
            self.run["snapshots"].append(self.snapshot())

    def snapshot(self) -> dict:
        athletes = [
            self.stored.get(a.id)
            or wire.not_started_athlete(a.id, a.bib, a.name, a.gender, a.category)
            for a in self.athletes
        ]
        race = {
            "slug": "conformance",
            "name": self.name,
            "status": "running",
            "started_at": wire.iso(START),
            "finished_at": None,
            "time_compression": 20.0,
            "clock_s": self.state.clock_s if self.frame else None,
        }
        snapshot = wire.snapshot_message(self.frame, race, None, athletes)
        live = json.loads(wire.dumps(self.state.leaderboard()))
        assert snapshot["athletes"] == live, "the stored snapshot must be the live leaderboard"
        return json.loads(wire.dumps(snapshot))

    def recording(self) -> dict:
        return {"name": self.name, "runs": self.runs}


def simulated(points: list[list[float]], seed: int, dnf_rate: float) -> RaceSimulation:
    starters = [
        pacing.AthleteSpec(i + 1, str(i + 1), name, gender, category)
        for i, (name, gender, category) in enumerate(NAMES)
    ]
    return RaceSimulation(
        slug="conformance",
        course=Course(points),
        checkpoints=[SimulatedCheckpoint(f"CP{i}", i * 3000.0) for i in range(1, 5)],
        athletes=starters,
        seed=seed,
        tick_seconds=240.0,
        started_at=START,
        dnf_rate_per_effort_km=dnf_rate,
    )


def athletes_of(simulation: RaceSimulation) -> list[AthleteSpec]:
    return [
        AthleteSpec(a.athlete_id, a.bib, a.name, a.gender, a.category) for a in simulation.athletes
    ]


def play(recorder: Recorder, simulation: RaceSimulation, rng: random.Random, *, until: int,
         tracker: bool = False) -> None:  # fmt: skip
    """Ticks up to `until` as relay frames: a frame takes a random share of the pending
    events (half a tick to two ticks), and now and then a redelivered event."""
    pending: list[dict] = []
    tick = -1
    while tick < until or pending:
        while len(pending) < rng.randint(1, 2 * len(NAMES)) and tick < until:
            events = simulation.events(tick, tick + 1)
            tick += 1
            if tracker:  # a real tracker: no distance, the relay snaps onto the course
                events = [{k: v for k, v in e.items() if k != "distance_m"} for e in events]
            pending.extend(events)
        take = rng.randint(1, max(len(pending), 1))
        batch, pending = pending[:take], pending[take:]
        if batch and rng.random() < 0.2:
            batch.append(rng.choice(batch))  # a redelivery: the race state drops it
        recorder.frame_of(batch)


def record() -> dict:
    """Every recorded race (deterministic)."""
    races = [recorder.recording() for recorder in recorded()]
    return {"generator": "python -m tests.wire_recordings", "races": races}


def recorded() -> list[Recorder]:
    """The recorded races, as their recorders hold them."""
    points = loop_course()
    recordings = []

    simulation = simulated(points, seed=11, dnf_rate=0.03)
    loop = Recorder(points, athletes_of(simulation), "Loop course with DNFs, to the end")
    loop.new_run()
    play(loop, simulation, random.Random(1), until=simulation.last_tick)
    loop.end_run()
    recordings.append(loop)

    simulation = simulated(points, seed=23, dnf_rate=0.02)
    tracked = Recorder(points, athletes_of(simulation), "Loop course, trackers (snapped)")
    tracked.new_run()
    play(tracked, simulation, random.Random(2), until=simulation.last_tick, tracker=True)
    tracked.end_run()
    recordings.append(tracked)

    simulation = simulated(points, seed=37, dnf_rate=0.02)
    reset = Recorder(points, athletes_of(simulation), "Reset mid-race, then run again")
    reset.new_run()
    play(reset, simulation, random.Random(3), until=simulation.last_tick // 2)
    reset.end_run()
    reset.new_run()  # reset: the live state is cleared, frames count from 1 again
    play(reset, simulation, random.Random(4), until=simulation.last_tick)
    reset.end_run()
    recordings.append(reset)
    return recordings


def write(path: Path = FIXTURE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        json.dump(record(), handle, ensure_ascii=False, separators=(",", ":"))
        handle.write("\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE)
