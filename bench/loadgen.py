"""The benchmark's athletes: a race's simulated positions, published at a chosen rate.

Runs the simulator of ``races.simulation.driver`` (the one Celery runs) for a race of the
bench database and publishes with the simulator's ``AmqpPublisher`` (publisher confirms, one
connection) into the race's fanout. It follows the race clock like a Celery segment,
publishing each tick when it is due, at most ``--rate`` times per wall-clock second: each
publish carries the position of every athlete at the current tick (and any checkpoint
passed since the last one).
``--burst-ticks T`` instead publishes ticks 1..T as fast as the broker confirms them (a
backlog for measuring the relay). Prints one JSON line with what it published.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slug", required=True)
    parser.add_argument("--rate", type=float, default=1.0, help="publishes per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--burst-ticks", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")
    django.setup()

    from django.conf import settings
    from django.utils import timezone

    from races.models import Race
    from races.simulation import driver as simulation
    from simulator.clock import race_seconds, tick_at, wall_time_of
    from simulator.publishers import AmqpPublisher

    race = Race.objects.select_related("course").get(slug=args.slug)
    simulator = simulation.simulation_for(race)
    exchange = race.exchange_name
    publisher = AmqpPublisher(settings.AMQP_URL)
    published = publishes = 0
    lags: list[float] = []
    began = time.monotonic()
    try:
        if args.burst_ticks:
            for tick in range(1, args.burst_ticks + 1):
                events = simulator.events(tick - 1, tick)
                publisher.publish(exchange, events)
                published += len(events)
                publishes += 1
        else:

            def current_tick() -> int:
                clock = race_seconds(race.started_at, timezone.now(), race.time_compression)
                return tick_at(clock, race.tick_seconds)

            period = 1.0 / args.rate
            ticks_per_second = race.time_compression / race.tick_seconds
            next_at = time.monotonic()
            stop_at = next_at + args.duration
            last = current_tick() - 1
            while time.monotonic() < stop_at:
                tick = current_tick()
                if tick > last:
                    events = simulator.events(last, tick)
                    publisher.publish(exchange, events)
                    due = wall_time_of(
                        race.started_at, tick * race.tick_seconds, race.time_compression
                    )
                    lags.append((timezone.now() - due).total_seconds())
                    published += len(events)
                    publishes += 1
                    last = tick
                # Wake when the next tick is due, as the simulation's driver does; only
                # when ticks come faster than --rate (scenario a) on a --rate schedule.
                # A loop on its own period alone published each tick up to a period late,
                # a constant offset in every latency measured (scenario b, 2026-12-01:
                # each 1 s tick published 480 ms after it was due, spectators' p50 366 to
                # 723 ms by the loop's phase).
                next_tick_due = wall_time_of(
                    race.started_at, (last + 1) * race.tick_seconds, race.time_compression
                )
                until_due = (next_tick_due - timezone.now()).total_seconds()
                if ticks_per_second > args.rate:
                    next_at += period
                    wake_at = max(next_at, time.monotonic() + until_due)
                else:
                    wake_at = time.monotonic() + until_due
                time.sleep(max(wake_at - time.monotonic(), 0.0))
    finally:
        publisher.close()
    elapsed = time.monotonic() - began
    lags.sort()
    summary = {
        "published": published,
        "publishes": publishes,
        "seconds": round(elapsed, 3),
        "positions_per_s": round(published / elapsed, 1) if elapsed else 0.0,
        "publish_lag_p50_ms": round(lags[len(lags) // 2] * 1000, 1) if lags else None,
        "publish_lag_max_ms": round(lags[-1] * 1000, 1) if lags else None,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
