"""How fast the leaderboard at an instant answers (`/api/races/<slug>/leaderboard?at=`).

    DATABASE_URL=postgres://... python bench/bench_history.py [--athletes 1000] [--ticks 240]

A race of ``--athletes`` on the VTR classic course is simulated for ``--ticks`` ticks of
60 s; every tick goes through the relay's race state and is stored by the relay's own
write path (`live_store.store_frame`), in a throwaway database. Then, at several instants:

- ``full replay`` (the baseline): a fresh race state fed every stored position up to T,
  the obvious way to rebuild history;
- ``history``: `races.history.timeline` (the positions that can change the state only),
  through the real view (Django test client: query, replay, leaderboard, JSON).

The first request of a process loads the race's positions (``cold``); a slider then
hits the warm timeline. Median of ``--repeat`` runs per instant; the target is 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from races.history import timeline  # noqa: E402
from races.models import Position, Race  # noqa: E402
from races.organizer.course_import import create_race  # noqa: E402
from races.organizer.demo import generate_start_list  # noqa: E402
from races.relay import live_store  # noqa: E402
from races.relay.race_setup import new_race_state  # noqa: E402
from races.simulation.driver import simulation_for  # noqa: E402
from simulator.clock import iso_z  # noqa: E402

GPX = ROOT / "samples" / "gpx" / "trailrun-vtr-classic-2019.gpx"
TARGET_MS = 150.0


def build_race(athletes: int, ticks: int) -> Race:
    race = create_race(
        f"History bench {athletes}", GPX.name, GPX.read_bytes(),
        generate_start_list(athletes, seed=11), tick_seconds=60.0,
    )  # fmt: skip
    Race.objects.filter(pk=race.pk).update(
        status=Race.Status.RUNNING, started_at=timezone.now() - timedelta(hours=12)
    )
    race.refresh_from_db()
    simulation = simulation_for(race)
    state = new_race_state(race)
    last = min(ticks, simulation.last_tick)
    for frame, tick in enumerate(range(-1, last), start=1):
        fixes = [state.apply(event) for event in simulation.events(tick, tick + 1)]
        changes = state.take_changes()
        live_store.store_frame(
            race.pk, frame, state.clock_s, [f for f in fixes if f], changes.full, state.last_seqs()
        )
    return race


def full_replay_ms(race: Race, seconds: float) -> float:
    began = time.perf_counter()
    state = new_race_state(race)
    at = timeline.instant(race, seconds)
    rows = Position.objects.filter(race=race, time__lte=at).order_by("seq")
    columns = ("athlete_id", "seq", "event", "time", "latitude", "longitude", "elevation",
               "distance_m", "speed_mps")  # fmt: skip
    for athlete, seq, event, moment, lat, lon, ele, distance, speed in rows.values_list(*columns):
        state.apply(
            {"athlete_id": athlete, "seq": seq, "event": event, "time": iso_z(moment),
             "location": {"latitude": lat, "longitude": lon}, "elevation": ele,
             "distance_m": distance, "speed_mps": speed}
        )  # fmt: skip
    state.leaderboard()
    return (time.perf_counter() - began) * 1000


def history_ms(client: Client, race: Race, seconds: float) -> float:
    began = time.perf_counter()
    response = client.get(f"/api/races/{race.slug}/leaderboard", {"at": f"{seconds:g}"})
    assert response.status_code == 200, response.content[:200]
    return (time.perf_counter() - began) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--athletes", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        began = time.perf_counter()
        race = build_race(args.athletes, args.ticks)
        built_s = time.perf_counter() - began
        positions = Position.objects.filter(race=race).count()
        client = Client()
        span = min(args.ticks, simulation_for(race).last_tick) * race.tick_seconds
        instants = [span * share for share in (0.1, 0.5, 0.9, 1.0)]
        cold = history_ms(client, race, instants[1])
        print(f"\n{args.athletes} athletes, {positions} stored positions "
              f"(built in {built_s:.0f} s), database {connection.vendor}, "
              f"target {TARGET_MS:.0f} ms; cold first request {cold:.0f} ms\n")  # fmt: skip
        print("| race time | full replay ms | history ms | ratio | under target |")
        print("|---|---|---|---|---|")
        for seconds in instants:
            full = statistics.median(full_replay_ms(race, seconds) for _ in range(args.repeat))
            fast = statistics.median(history_ms(client, race, seconds) for _ in range(args.repeat))
            print(f"| {timedelta(seconds=round(seconds))} | {full:.0f} | {fast:.1f} "
                  f"| {full / fast:.0f}x | {'yes' if fast < TARGET_MS else 'NO'} |")  # fmt: skip
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
