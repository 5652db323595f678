"""Embedded mode: the in-process runner drives races into the in-process relay, which
finishes them (the runner never does)."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from harness.waiting import async_wait_until, wait_until
from races.models import Position, Race
from races.organizer import lifecycle
from races.relay import embedded
from races.simulation import embedded_runner as embedded_simulation
from races.simulation.driver import simulation_for
from tests.factories import make_race

pytestmark = pytest.mark.django_db(transaction=True)

LOOP = "route-only-alltrails-ecology-trail.gpx"  # 3.2 km: a couple of seconds at 1000x


@pytest.fixture
def relayed(monkeypatch):
    """What reaches the embedded relay's intake, batch by batch."""
    batches: list[tuple[str, list[dict]]] = []
    monkeypatch.setattr(embedded, "publish", lambda exchange, ev: batches.append((exchange, ev)))
    yield batches
    embedded_simulation.stop()


def test_a_started_race_runs_in_process_to_its_last_tick_and_waits_for_the_relay(relayed, settings):
    settings.SIMULATION_SEGMENT_SECONDS = 0.5  # several segments in one thread
    embedded_simulation.start()
    race = lifecycle.start_race(make_race(gpx=LOOP, athletes=5, time_compression=1000.0))
    last_tick = simulation_for(race).last_tick
    wait_until(lambda: Race.objects.get(pk=race.pk).sim_tick == last_tick, 30, "the last tick")
    wait_until(lambda: not _driving_alive(race), 10, "the simulation thread to end")
    events = [e for exchange, batch in relayed for e in batch if exchange == race.exchange_name]
    assert sum(e["event"] == "start" for e in events) == 5
    assert sum(e["event"] in ("finish", "dnf") for e in events) == 5
    assert len({e["seq"] for e in events}) == len(events)
    # No relay took these events in: the race stays running, and even once its heartbeat
    # is old the supervisor does not simulate it again.
    long_ago = timezone.now() - timedelta(minutes=5)
    Race.objects.filter(pk=race.pk).update(sim_heartbeat=long_ago)
    assert embedded_simulation.races_to_run() == []
    assert Race.objects.get(pk=race.pk).status == Race.Status.RUNNING


def _driving_alive(race: Race) -> bool:
    thread = embedded_simulation._driving.get(race.pk)
    return thread is not None and thread.is_alive()


async def test_the_embedded_relay_finishes_a_race_the_runner_published_in_full(
    fresh_layer, settings
):
    settings.SIMULATION_SEGMENT_SECONDS = 0.5
    embedded.start()  # the relay in this event loop, as in the web process
    embedded_simulation.start()
    try:
        race = await sync_to_async(lifecycle.start_race)(
            await sync_to_async(make_race)(gpx=LOOP, athletes=3, time_compression=1000.0)
        )

        async def finished() -> bool:
            return (await Race.objects.aget(pk=race.pk)).status == Race.Status.FINISHED

        await async_wait_until(finished, 30, "the relay to finish the race")
        assert await Position.objects.filter(race=race, event__in=["finish", "dnf"]).acount() == 3
    finally:
        await asyncio.to_thread(embedded_simulation.stop)


def test_races_to_run_are_the_unclaimed_and_the_silent_ones():
    unclaimed = lifecycle.start_race(make_race(gpx=LOOP, athletes=2))
    silent = lifecycle.start_race(make_race(gpx=LOOP, athletes=2))
    busy = lifecycle.start_race(make_race(gpx=LOOP, athletes=2))
    Race.objects.filter(pk=silent.pk).update(
        sim_owner="gone", sim_heartbeat=timezone.now() - timedelta(minutes=1)
    )
    Race.objects.filter(pk=busy.pk).update(sim_owner="alive", sim_heartbeat=timezone.now())
    assert {r.pk for r in embedded_simulation.races_to_run()} == {unclaimed.pk, silent.pk}


def test_stopping_the_runner_ends_its_races_promptly(relayed):
    embedded_simulation.start()
    race = lifecycle.start_race(make_race(gpx=LOOP, athletes=2, time_compression=1.0))
    wait_until(lambda: relayed, 10, "the start events")
    embedded_simulation.stop(timeout_s=5)
    assert not any(t.is_alive() for t in embedded_simulation._driving.values())
    race.refresh_from_db()
    assert race.status == Race.Status.RUNNING  # the race goes on when a runner returns
