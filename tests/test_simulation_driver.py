"""races/simulation/driver.py: driving a race from the database, claims, Stop, resume, the
last tick (after which the relay, not the simulation, finishes the race)."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from races.models import Race
from races.organizer import lifecycle
from races.simulation import driver as simulation
from simulator.clock import race_seconds, tick_at
from simulator.publishers import CallbackPublisher
from tests.factories import make_race

pytestmark = pytest.mark.django_db


class Collector:
    """A publisher that keeps every batch, and can act after the n-th one."""

    def __init__(self, after_batch=None, action=None):
        self.batches: list[list[dict]] = []
        self._after, self._action = after_batch, action
        self.publisher = CallbackPublisher(self._take)

    def _take(self, exchange, events):
        self.batches.append(list(events))
        if len(self.batches) == self._after:
            self._action()

    @property
    def events(self):
        return [e for batch in self.batches for e in batch]


def started(compression: float = 1000.0, gpx: str = "trailrun-vtr-classic-2019.gpx") -> Race:
    race = make_race(gpx=gpx, athletes=4, time_compression=compression, tick_seconds=10.0)
    return lifecycle.start_race(race)


def run(race: Race, collector: Collector, owner="segment-1", predecessor="", budget_s=60.0):
    return simulation.run_segment(
        race.pk,
        race.generation,
        owner=owner,
        predecessor=predecessor,
        publisher=collector.publisher,
        budget_s=budget_s,
    )


def test_a_race_runs_to_its_last_tick_and_is_left_running_for_the_relay():
    race = started(gpx="route-only-alltrails-ecology-trail.gpx")  # 3.2 km: ~2 s at 1000x
    collector = Collector()
    assert run(race, collector) is simulation.Outcome.COMPLETE
    race.refresh_from_db()
    assert race.status == Race.Status.RUNNING  # only the relay finishes a race
    assert race.finished_at is None
    events = collector.events
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert sum(e["event"] == "start" for e in events) == 4
    assert sum(e["event"] in ("finish", "dnf") for e in events) == 4
    assert {e["race"] for e in events} == {race.exchange_name}
    assert race.sim_tick == simulation.simulation_for(race).last_tick
    assert simulation.published_everything(race)


def test_a_segment_delivered_again_after_the_last_tick_publishes_nothing():
    race = started(gpx="route-only-alltrails-ecology-trail.gpx")
    assert run(race, Collector()) is simulation.Outcome.COMPLETE
    again = Collector()
    assert run(race, again) is simulation.Outcome.COMPLETE
    assert again.batches == []
    assert Race.objects.get(pk=race.pk).status == Race.Status.RUNNING


def test_stop_is_seen_before_the_next_tick_is_published():
    race = started(compression=200.0)  # a tick every 50 ms
    collector = Collector(after_batch=3, action=lambda: lifecycle.stop_race(race))
    assert run(race, collector) is simulation.Outcome.STOPPED
    assert len(collector.batches) == 3


def test_a_segment_ends_when_its_time_is_up_and_the_successor_carries_on():
    race = started(compression=200.0)
    first = Collector()
    assert run(race, first, budget_s=0.5) is simulation.Outcome.CONTINUE
    race.refresh_from_db()
    assert race.sim_owner == "segment-1" and race.sim_tick >= 1
    last_seq = first.events[-1]["seq"]
    second = Collector(after_batch=2, action=lambda: lifecycle.stop_race(race))
    assert run(race, second, owner="segment-2", predecessor="segment-1") is (
        simulation.Outcome.STOPPED
    )
    assert second.events[0]["seq"] > last_seq - 10  # at most the last tick again, never tick 0
    assert not [e for e in second.events if e["event"] == "start"]


def test_only_the_named_successor_may_claim_a_race():
    race = started(compression=200.0)
    assert run(race, Collector(), budget_s=0.1) is simulation.Outcome.CONTINUE
    stranger = Collector()
    assert run(race, stranger, owner="x", predecessor="someone-else") is simulation.Outcome.REFUSED
    assert stranger.batches == []


def test_a_segment_delivered_again_resumes_from_its_last_recorded_tick_without_holes():
    race = started(compression=1.0)
    # A worker died after recording tick 40 of a race that began an hour ago.
    hour_ago = timezone.now() - timedelta(hours=1)
    Race.objects.filter(pk=race.pk).update(started_at=hour_ago, sim_owner="dead", sim_tick=40)
    race.refresh_from_db()
    simulation._cache.clear()
    due = tick_at(race_seconds(hour_ago, timezone.now(), 1.0), race.tick_seconds)
    batches = -(-(due - 40) // simulation.CATCH_UP_BATCH_TICKS)
    collector = Collector(after_batch=batches, action=lambda: lifecycle.stop_race(race))
    run(race, collector, owner="dead", predecessor="")
    caught_up = [e for batch in collector.batches[:batches] for e in batch]
    running_ticks = sorted(
        {
            round((datetime.fromisoformat(e["time"]) - hour_ago).total_seconds() / 10)
            for e in caught_up
            if e["event"] == "running"
        }
    )
    # Every tick the dead worker missed is published late, oldest first, none twice.
    assert running_ticks == list(range(41, running_ticks[-1] + 1))
    assert due <= running_ticks[-1] <= due + 1
    assert [e["seq"] for e in caught_up] == sorted({e["seq"] for e in caught_up})
    assert not [e for e in caught_up if e["event"] == "start"]
    checkpoints = [e for e in caught_up if e["event"] == "checkpoint"]
    assert all(e["split_s"] > 400 for e in checkpoints)  # only what happened after tick 40


def test_a_restarted_race_stops_the_old_generation():
    race = started(compression=200.0)
    old_generation = race.generation
    lifecycle.stop_race(race)
    race = lifecycle.start_race(lifecycle.reset_race(race))
    stale = Collector()
    outcome = simulation.run_segment(
        race.pk, old_generation, owner="old", predecessor="",
        publisher=stale.publisher, budget_s=1.0,
    )  # fmt: skip
    assert outcome is simulation.Outcome.REFUSED and stale.batches == []


def test_stale_races_are_those_whose_heartbeat_is_old():
    quiet, busy, fresh = started(), started(), started()
    long_ago = timezone.now() - timedelta(minutes=5)
    Race.objects.filter(pk=quiet.pk).update(sim_heartbeat=long_ago, sim_owner="gone")
    Race.objects.filter(pk=busy.pk).update(sim_heartbeat=timezone.now(), sim_owner="alive")
    Race.objects.filter(pk=fresh.pk).update(started_at=long_ago)  # never claimed at all
    assert {r.pk for r in simulation.stale_races(15.0)} == {quiet.pk, fresh.pk}


def complete_and_quiet() -> Race:
    """A race whose simulation published everything a while ago; no relay finished it."""
    race = started(gpx="route-only-alltrails-ecology-trail.gpx")
    assert run(race, Collector()) is simulation.Outcome.COMPLETE
    long_ago = timezone.now() - timedelta(minutes=5)
    Race.objects.filter(pk=race.pk).update(sim_heartbeat=long_ago)
    return race


def test_a_race_whose_simulation_published_everything_is_not_stale():
    complete = complete_and_quiet()
    assert [r.pk for r in simulation.quiet_races(15.0)] == [complete.pk]
    assert simulation.stale_races(15.0) == []


def test_the_watchdog_leaves_a_complete_race_to_the_relay_and_says_so(caplog, monkeypatch):
    from races.simulation import tasks

    complete = complete_and_quiet()
    enqueued = []
    monkeypatch.setattr(tasks, "enqueue_segment", lambda *args, **kw: enqueued.append(args))
    assert tasks.watchdog() == 0
    assert enqueued == []
    assert f"race {complete.slug}: every event published" in caplog.text
    assert "is the relay running?" in caplog.text
    assert Race.objects.get(pk=complete.pk).status == Race.Status.RUNNING
