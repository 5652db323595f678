import pytest

from races.models import Position, Race
from races.organizer import lifecycle
from tests.factories import make_race

pytestmark = pytest.mark.django_db


def test_a_race_runs_from_draft_to_stopped_and_back():
    race = make_race()
    race = lifecycle.start_race(race)
    assert race.status == Race.Status.RUNNING and race.started_at is not None
    race = lifecycle.stop_race(race)
    assert race.status == Race.Status.STOPPED
    race = lifecycle.reset_race(race)
    assert race.status == Race.Status.DRAFT and race.started_at is None
    assert race.generation == 3


def test_refused_transitions_say_why():
    race = make_race()
    with pytest.raises(lifecycle.TransitionRefused, match="draft, so it cannot become stopped"):
        lifecycle.stop_race(race)
    race = lifecycle.start_race(race)
    with pytest.raises(lifecycle.TransitionRefused, match="stop it first"):
        lifecycle.reset_race(race)
    with pytest.raises(lifecycle.TransitionRefused, match="stop it first"):
        lifecycle.start_race(race)


def test_a_race_without_athletes_cannot_start():
    race = make_race(athletes=0)
    with pytest.raises(lifecycle.TransitionRefused, match="no athletes"):
        lifecycle.start_race(race)
    assert Race.objects.get(pk=race.pk).status == Race.Status.DRAFT


def test_reset_clears_positions():
    race = lifecycle.start_race(make_race())
    athlete = race.athletes.first()
    Position.objects.create(
        race=race, athlete=athlete, seq=1, time=race.started_at, latitude=48.0,
        longitude=16.0, distance_m=0.0, event="start",
    )  # fmt: skip
    race = lifecycle.reset_race(lifecycle.stop_race(race))
    assert not Position.objects.filter(race=race).exists()


def test_hooks_run_only_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    started = []
    monkeypatch.setattr(lifecycle, "on_started", [started.append])
    race = make_race()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.start_race(race)
        assert started == []
    assert [r.pk for r in started] == [race.pk]
