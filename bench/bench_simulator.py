"""Positions per second one simulation worker process publishes.

    python bench/bench_simulator.py [--athletes 1000 10000] [--seconds 5] [--amqp URL]

For each field size the Rosengarten Schlern Skymarathon course is simulated and whole
ticks are published from mid-race, as a Celery segment does: every athlete's event is
computed, serialized to JSON and handed to the publisher.

- ``null``: serialized, then dropped (the cost of the simulation and of JSON).
- ``rabbitmq``: the real ``AmqpPublisher`` to the local RabbitMQ, persistent messages
  with publisher confirms, into a durable queue bound like the relay's (deleted after).

``per core`` divides by the CPU seconds of this process only (RabbitMQ runs on the other
core); ``wall`` by the elapsed time. Median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")

import django  # noqa: E402

django.setup()

from kombu import Connection, Exchange, Queue  # noqa: E402

from races.organizer.checkpoints import plan_checkpoints  # noqa: E402
from races.organizer.demo import generate_start_list  # noqa: E402
from races.organizer.gpx import parse_gpx  # noqa: E402
from simulator.geometry import Course  # noqa: E402
from simulator.pacing import AthleteSpec  # noqa: E402
from simulator.publishers import AmqpPublisher  # noqa: E402
from simulator.race import CheckpointSpec, RaceSimulation  # noqa: E402

COURSE = ROOT / "samples" / "gpx" / "skymarathon-rosengarten-schlern-2019.gpx"
FIRST_TICK = 600  # 50 minutes in (tick 5 s): everyone is out on the course


class NullPublisher:
    """Serializes like the AMQP publisher, sends nothing."""

    def publish(self, exchange: str, events: Sequence[dict]) -> None:
        for event in events:
            json.dumps(event, separators=(",", ":")).encode()


def build(athletes: int) -> tuple[RaceSimulation, float]:
    parsed = parse_gpx(COURSE.read_bytes())
    course = Course([[p.latitude, p.longitude, p.elevation, p.distance_m] for p in parsed.points])
    checkpoints = [
        CheckpointSpec(c.name, c.distance_m)
        for c in plan_checkpoints(parsed, 5.0)
        if c.kind == "checkpoint"
    ]
    field = [
        AthleteSpec(i + 1, row.bib, row.name, row.gender, row.category)
        for i, row in enumerate(generate_start_list(athletes, seed=1))
    ]
    began = time.perf_counter()
    simulation = RaceSimulation(
        slug=f"bench-{uuid.uuid4().hex[:8]}",
        course=course,
        checkpoints=checkpoints,
        athletes=field,
        seed=1,
        tick_seconds=5.0,
        started_at=datetime(2026, 7, 13, 5, tzinfo=UTC),
    )
    return simulation, time.perf_counter() - began


def run(simulation: RaceSimulation, publisher, seconds: float) -> tuple[int, float, float]:
    """Publish tick after tick for about ``seconds``: (positions, wall s, CPU s)."""
    positions, tick = 0, FIRST_TICK
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        events = simulation.events(tick - 1, tick)
        publisher.publish(simulation.race, events)
        positions += len(events)
        tick += 1
    return positions, time.perf_counter() - wall, time.process_time() - cpu


def with_bound_queue(url: str, exchange: str):
    """Bind a durable queue like the relay's, so RabbitMQ really routes and stores."""
    conn = Connection(url)
    queue = Queue(f"bench.{exchange}", Exchange(exchange, "fanout", durable=True), durable=True)
    queue(conn.default_channel).declare()

    def cleanup() -> None:
        conn.default_channel.queue_delete(queue.name)
        conn.default_channel.exchange_delete(exchange)
        conn.close()

    return cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--athletes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--amqp", default=os.getenv("AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672//"
    )
    args = parser.parse_args()

    print(f"{'athletes':>8} {'publisher':>9} {'build s':>8} {'positions':>10} "
          f"{'wall /s':>9} {'per core /s':>12}")  # fmt: skip
    for athletes in args.athletes:
        simulation, build_s = build(athletes)
        for name in ("null", "rabbitmq"):
            results = []
            for _ in range(args.repeat):
                if name == "null":
                    results.append(run(simulation, NullPublisher(), args.seconds))
                    continue
                cleanup = with_bound_queue(args.amqp, simulation.race)
                publisher = AmqpPublisher(args.amqp)
                try:
                    results.append(run(simulation, publisher, args.seconds))
                finally:
                    publisher.close()
                    cleanup()
            positions, wall, cpu = sorted(results, key=lambda r: r[0] / r[2])[len(results) // 2]
            print(f"{athletes:>8} {name:>9} {build_s:>8.2f} {positions:>10} "
                  f"{positions / wall:>9.0f} {positions / cpu:>12.0f}")  # fmt: skip
    print(f"\ntarget: 20,000 positions/s per core; cores here: {os.cpu_count()}, "
          f"load average {statistics.mean(os.getloadavg()):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
