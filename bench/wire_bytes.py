"""Bytes on the wire of both spectator protocols, offline: no broker, database or server.

A 1,000-athlete race (the design load: one position per athlete per second, relay frames
at 4 per second) is run by the real simulator and the relay's `RaceState`, exactly as
`tests.wire_recordings` runs its small races. Every frame is encoded as v1 JSON text and
as `raceweb.v2` (races/wire_v2.py) without and with its one-shot deflate, to see what
compression earns for its CPU. Prints one table:

    .venv/bin/python -m bench.wire_bytes [--athletes 1000] [--seconds 60] [--at 1800]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from races import wire, wire_v2
from races.relay.athlete_state import AthleteSpec
from races.relay.course_line import CourseLine
from races.relay.race_state import RaceState
from simulator import pacing
from simulator.effort import CourseEffort
from simulator.geometry import Course
from simulator.race import CheckpointSpec as SimulatedCheckpoint
from simulator.race import RaceSimulation
from tests.wire_recordings import Recorder, loop_course

FIRST = ["Ada", "Bob", "Cleo", "Dan", "Eva", "Finn", "Gül", "Hiro", "Ines", "Jonas", "Katalin"]
LAST = ["Lovelace", "Müller", "Ørsted", "Walker", "Nováková", "O'Brien", "Yildiz", "Tanaka"]
CATEGORIES = ["M20", "M40", "W30", "W50", ""]
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def race(athletes: int) -> tuple[RaceSimulation, RaceState]:
    points = loop_course()
    starters = [
        pacing.AthleteSpec(
            i + 1,
            str(100 + i),
            f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}",
            "female" if i % 2 else "male",
            CATEGORIES[i % len(CATEGORIES)],
        )
        for i in range(athletes)
    ]
    simulation = RaceSimulation(
        slug="bytes",
        course=Course(points),
        checkpoints=[SimulatedCheckpoint(f"CP{i}", i * 3000.0) for i in range(1, 5)],
        athletes=starters,
        seed=5,
        tick_seconds=1.0,
        started_at=START,
        dnf_rate_per_effort_km=0.01,
    )
    specs = [AthleteSpec(a.athlete_id, a.bib, a.name, a.gender, a.category) for a in starters]
    checkpoints = Recorder(points, specs, "bytes").checkpoints  # as the recordings have them
    state = RaceState(
        length_m=points[-1][3],
        checkpoints=checkpoints,
        athletes=specs,
        start_time=START,
        course=CourseLine(points),
        effort=CourseEffort.of_points(points, points[-1][3]),  # as RaceSetup.of builds it
    )
    return simulation, state


def measure(athletes: int, seconds: int, at: int, fps: int) -> dict:
    simulation, state = race(athletes)
    held: dict[int, dict] = {}  # the web hub's state: id -> ATHLETE
    clock: dict = {"clock_s": None}
    v1 = v2 = deflated = positions = frames = measured = 0
    v1_s = v2_s = deflate_s = 0.0
    for tick in range(at + seconds):
        events = simulation.events(tick - 1, tick)
        share = max(1, -(-len(events) // fps))
        for start in range(0, max(len(events), 1), share):
            for event in events[start : start + share]:
                state.apply(event)
            changes = state.take_changes()
            if not changes.wire:
                continue
            frames += 1
            update = wire.update_message(frames, state.clock_s, changes.wire)
            began = time.perf_counter()
            text = wire.dumps(update)
            middle = time.perf_counter()
            parsed = json.loads(text)
            compact = wire_v2.encode_update(held, parsed, deflate=False)
            ended = time.perf_counter()
            packed = wire_v2.pack(compact)
            if tick >= at:
                v1_s += middle - began
                v2_s += ended - middle
                deflate_s += time.perf_counter() - ended
                v1, v2, deflated = (
                    v1 + len(text.encode()),
                    v2 + len(compact),
                    deflated + len(packed),
                )
                positions += len(parsed["athletes"])
                measured += 1
            wire.merge_update(held, clock, parsed)
    race_summary = {"slug": "bytes", "name": "Bytes", "status": "running", "clock_s": state.clock_s}
    snapshot = wire.snapshot_message(frames, race_summary, None, held.values())
    snapshot_v1 = wire.dumps(snapshot).encode()
    snapshot_v2 = wire_v2.encode_snapshot(snapshot, deflate=False)
    return {
        "athletes": athletes,
        "positions": positions,
        "seconds": seconds,
        "frames": measured,
        "rows": [
            ("v1 JSON", v1, v1_s, len(snapshot_v1)),
            ("v2, not deflated", v2, v2_s, len(snapshot_v2)),
            ("raceweb.v2 (deflated)", deflated, v2_s + deflate_s, len(wire_v2.pack(snapshot_v2))),
        ],
    }


def table(result: dict) -> str:
    positions, seconds = result["positions"], result["seconds"]
    baseline = result["rows"][0][1]
    lines = [
        f"{result['athletes']} athletes at 1 Hz, {seconds} s measured, "
        f"{positions} athlete updates in {result['frames']} frames (offline, one process)",
        "| protocol | bytes per athlete update | kbit/s per spectator | vs v1 "
        "| encode µs per frame | 1,000-athlete snapshot |",
        "|---|---|---|---|---|---|",
    ]
    frames_measured = max(1, result["frames"])
    for name, total, encode_s, snapshot in result["rows"]:
        lines.append(
            f"| {name} | {total / positions:.1f} | {total * 8 / seconds / 1000:.0f} "
            f"| {total / baseline:.3f} | {encode_s / frames_measured * 1e6:.0f} "
            f"| {snapshot / 1024:.1f} KB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wire_bytes", description=__doc__)
    parser.add_argument("--athletes", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=60, help="race seconds measured")
    parser.add_argument("--at", type=int, default=900, help="race second the measure starts")
    parser.add_argument("--fps", type=int, default=4, help="relay frames per second")
    args = parser.parse_args(argv)
    print(table(measure(args.athletes, args.seconds, args.at, args.fps)))


if __name__ == "__main__":
    main()
