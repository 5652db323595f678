"""Ghost pacers: what the organizer sets, what spectators get, where they never appear."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from races.models import Ghost
from races.organizer.admin_ghosts import GhostForm
from races.spectators.snapshots import course_effort
from simulator.effort import even_effort_schedule
from tests.factories import make_race

pytestmark = pytest.mark.django_db


def add_ghosts(race) -> tuple[Ghost, Ghost]:
    cp = race.checkpoints.filter(kind="checkpoint").order_by("order").first()
    cutoff = Ghost.objects.create(race=race, kind=Ghost.Kind.CUTOFF, name="Cut-off",
                                  finish_time=timedelta(hours=3),
                                  checkpoint_times={cp.name: 3600.0})  # fmt: skip
    target = Ghost.objects.create(race=race, kind=Ghost.Kind.TARGET, name="Sub 1:30",
                                  finish_time=timedelta(minutes=90))  # fmt: skip
    return cutoff, target


def test_a_schedule_passes_its_anchors_on_time_and_slows_on_climbs():
    race = make_race("Ghost Schedule Race", athletes=0)
    effort = course_effort(race.course)
    length = race.course.length_m
    schedule = even_effort_schedule(effort, [(0.0, 0.0), (5000.0, 2400.0), (length, 6000.0)])
    assert schedule[0] == [0.0, 0.0] and schedule[-1] == [round(length, 1), 6000.0]
    assert [5000.0, 2400.0] in schedule
    times = [t for _, t in schedule]
    assert times == sorted(times)
    # even effort, not even pace: the seconds per metre differ along the course
    cells = itertools.pairwise(schedule)
    paces = {round((t1 - t0) / (d1 - d0), 2) for (d0, t0), (d1, t1) in cells if d1 > d0}
    assert len(paces) > 5


def test_the_admin_form_reads_checkpoint_times_and_refuses_what_cannot_be():
    race = make_race("Ghost Form Race", athletes=0)
    cp = race.checkpoints.filter(kind="checkpoint").order_by("order").first()
    data = {"kind": "cutoff", "name": "", "finish_time": "3:00:00",
            "checkpoint_times": f"{cp.name} = 1:15:00"}  # fmt: skip
    form = GhostForm(data, instance=Ghost(race=race))
    assert form.is_valid(), form.errors
    ghost = form.save()
    assert ghost.checkpoint_times == {cp.name: 4500.0} and ghost.label == "Cut-off"
    assert f"{cp.name} = 1:15:00" in GhostForm(instance=ghost).as_p()

    bad_line = GhostForm(
        {**data, "checkpoint_times": "somewhere at noon"}, instance=Ghost(race=race)
    )
    assert not bad_line.is_valid() and "H:MM:SS" in str(bad_line.errors)
    unknown = GhostForm(
        {**data, "checkpoint_times": "Nowhere = 1:00:00"}, instance=Ghost(race=race)
    )
    assert not unknown.is_valid() and "Nowhere" in str(unknown.errors)
    late = GhostForm(
        {**data, "checkpoint_times": f"{cp.name} = 3:30:00"}, instance=Ghost(race=race)
    )
    assert not late.is_valid() and "grow along the course" in str(late.errors)
    with pytest.raises(ValidationError):
        Ghost(race=race, finish_time=timedelta(0)).full_clean()


def test_spectators_get_the_schedule_once_and_ghosts_are_never_ranked_or_in_results(client):
    race = make_race("Ghost API Race", athletes=3, status="finished")
    add_ghosts(race)
    course = client.get(f"/api/races/{race.slug}/").json()["course"]
    ghosts = {g["name"]: g for g in course["ghosts"]}
    assert set(ghosts) == {"Cut-off", "Sub 1:30"}
    assert ghosts["Cut-off"]["kind"] == "cutoff" and ghosts["Sub 1:30"]["finish_s"] == 5400.0
    cp = race.checkpoints.filter(kind="checkpoint").order_by("order").first()
    assert [round(cp.distance_m, 1), 3600.0] in ghosts["Cut-off"]["schedule"]
    board = client.get(f"/api/races/{race.slug}/leaderboard").json()
    names = {a["name"] for a in board["athletes"]}
    assert len(names) == 3 and not names & {"Cut-off", "Sub 1:30"}
    csv = client.get(f"/api/races/{race.slug}/results.csv").content.decode()
    assert "Cut-off" not in csv and "Sub 1:30" not in csv
    results = client.get(f"/races/{race.slug}/results/").content.decode()
    assert "Sub 1:30" not in results


def test_the_organizer_adds_a_cutoff_ghost_in_the_race_admin(admin_client):
    race = make_race("Ghost Admin Race", athletes=0)
    cp = race.checkpoints.filter(kind="checkpoint").order_by("order").first()
    url = f"/admin/races/race/{race.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "Ghost pacers" in page and 'name="ghosts-TOTAL_FORMS"' in page
    form = {
        "name": race.name, "slug": race.slug, "time_compression": "20", "tick_seconds": "5",
        "seed": "42", "visibility": "public", "tracking": "simulated",
        "athletes-TOTAL_FORMS": "0", "athletes-INITIAL_FORMS": "0",
        "revoked_labels-TOTAL_FORMS": "0", "revoked_labels-INITIAL_FORMS": "0",
        "ghosts-TOTAL_FORMS": "1", "ghosts-INITIAL_FORMS": "0",
        "ghosts-0-kind": "cutoff", "ghosts-0-name": "", "ghosts-0-finish_time": "2:30:00",
        "ghosts-0-checkpoint_times": f"{cp.name} = 0:50:00",
        "_save": "Save",
    }  # fmt: skip
    checkpoints = list(race.checkpoints.order_by("order"))
    form |= {"checkpoints-TOTAL_FORMS": str(len(checkpoints)),
             "checkpoints-INITIAL_FORMS": str(len(checkpoints))}  # fmt: skip
    for i, checkpoint in enumerate(checkpoints):
        form |= {f"checkpoints-{i}-id": str(checkpoint.pk), f"checkpoints-{i}-race": str(race.pk),
                 f"checkpoints-{i}-order": str(checkpoint.order),
                 f"checkpoints-{i}-name": checkpoint.name,
                 f"checkpoints-{i}-distance_m": str(checkpoint.distance_m),
                 f"checkpoints-{i}-kind": checkpoint.kind}  # fmt: skip
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    ghost = Ghost.objects.get(race=race)
    assert ghost.kind == "cutoff" and ghost.finish_time == timedelta(hours=2, minutes=30)
    assert ghost.checkpoint_times == {cp.name: 3000.0}
