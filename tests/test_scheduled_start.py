"""A scheduled race starts by itself at its start time (embedded runner, Celery watchdog)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from harness.waiting import wait_until
from races.models import Race
from races.organizer import lifecycle
from races.organizer.scheduled_start import start_due_races
from races.relay import embedded
from races.simulation import embedded_runner, tasks
from tests.factories import make_race, unique_name

LOOP = "route-only-alltrails-ecology-trail.gpx"


def scheduled(seconds_from_now: float, **fields) -> Race:
    race = make_race(unique_name(), gpx=LOOP, athletes=2, **fields)
    race.scheduled_start = timezone.now() + timedelta(seconds=seconds_from_now)
    race.save(update_fields=["scheduled_start"])
    return lifecycle.schedule_race(race)


@pytest.mark.django_db
def test_only_scheduled_races_whose_time_has_come_start():
    due = scheduled(-1)
    later = scheduled(3600)
    draft = make_race(unique_name(), gpx=LOOP, athletes=2, scheduled_start=timezone.now())
    assert [race.pk for race in start_due_races()] == [due.pk]
    statuses = {r.pk: r.status for r in Race.objects.filter(pk__in=[due.pk, later.pk, draft.pk])}
    assert statuses == {due.pk: "running", later.pk: "scheduled", draft.pk: "draft"}
    assert Race.objects.get(pk=due.pk).started_at is not None
    assert start_due_races() == []  # a second caller finds nothing to start


@pytest.mark.django_db
def test_the_watchdog_starts_a_scheduled_race_whose_time_has_come():
    race = scheduled(-1)
    tasks.watchdog()
    assert Race.objects.get(pk=race.pk).status == Race.Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_the_embedded_runner_starts_a_race_a_couple_of_seconds_ahead_on_time(monkeypatch):
    monkeypatch.setattr(embedded, "publish", lambda exchange, events: None)
    race = scheduled(2, time_compression=1000.0)
    embedded_runner.start()
    try:
        wait_until(
            lambda: Race.objects.get(pk=race.pk).status != Race.Status.SCHEDULED,
            10,
            "the scheduled start",
        )
        started = Race.objects.get(pk=race.pk)
        assert started.status in (Race.Status.RUNNING, Race.Status.FINISHED)
        late = (started.started_at - race.scheduled_start).total_seconds()
        assert 0 <= late < 2.5  # the runner looks every second
    finally:
        embedded_runner.stop()
