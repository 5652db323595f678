"""History: the leaderboard at any instant equals what live frames showed then; results,
CSV and GPX of a race with finishers, DNF and DNS.

The simulated race is the VTR classic, a loop (start and finish 21 m apart), run tick by
tick through the relay core (in process, in-memory layer), as the live frames were.
"""

import csv
import io

import gpxpy
import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from django.test import Client

from races.models import Position, Race
from races.organizer import lifecycle
from races.relay import embedded
from races.relay.core import RelayCore
from races.simulation.driver import simulation_for
from tests.factories import EventFeed, started_race
from tests.history_support import run_to_the_end

pytestmark = pytest.mark.django_db(transaction=True)

CHECKED_TICKS = (1, 7, 20, 33, 60)


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
    embedded.stop()


def test_the_leaderboard_at_an_instant_is_what_live_frames_showed_then():
    race = started_race(athletes=25, tick_seconds=120.0)
    simulation = simulation_for(race)
    keep = {t for t in CHECKED_TICKS if t <= simulation.last_tick} | {simulation.last_tick}
    seen = run_to_the_end(race, keep)
    race.refresh_from_db()
    assert race.status == Race.Status.FINISHED
    client = Client()
    for batch in sorted(keep):
        seconds = batch * race.tick_seconds
        response = client.get(f"/api/races/{race.slug}/leaderboard?at={seconds:g}")
        assert response.status_code == 200, response.content
        board = response.json()
        live = seen[batch]
        shown = {a["id"]: a for a in board["athletes"] if a["status"] != "not_started"}
        assert shown == {i: a for i, a in live.items() if a["status"] != "not_started"}, seconds
        # Over at the instant everyone was in (the last tick; the seed is random).
        everyone_in = all(a["status"] in ("finished", "dnf", "dns") for a in live.values())
        assert board["race"]["status"] == ("finished" if everyone_in else "running"), seconds
    # The last instant: everyone in, as the final board says.
    final = client.get(f"/api/races/{race.slug}/leaderboard").json()
    last = simulation.last_tick * race.tick_seconds
    after = client.get(f"/api/races/{race.slug}/leaderboard", {"at": str(last)}).json()
    assert after["athletes"] == final["athletes"]
    assert after["race"]["status"] == "finished"


@pytest.mark.parametrize("at", ["yesterday", "nan", "-5", "1e99", "2026-05-01T09:00:00", "inf", ""])
def test_a_bad_instant_is_a_clear_400(at):
    race = started_race(athletes=2)
    response = Client().get(f"/api/races/{race.slug}/leaderboard", {"at": at})
    assert response.status_code == 400
    assert "at" in response.json()["error"]


def finished_with_dnf_and_dns() -> tuple[Race, EventFeed]:
    """Four athletes: two finish, one drops out after a checkpoint, one never starts."""
    race = started_race(athletes=4)
    feed = EventFeed(race)
    first, second, quitter, _absent = feed.athletes
    checkpoints = [cp.distance_m for cp in race.checkpoints.filter(kind="checkpoint")]
    length = feed.length_m
    events = [feed.event(a, 0.0, 0.0, "start") for a in (first, second, quitter)]
    events += [feed.event(first, 100.0 + d / 4.0, d) for d in checkpoints]
    events += [feed.event(first, 100.0 + length / 4.0, length, "finish")]
    events += [feed.event(second, 200.0 + d / 3.0, d) for d in checkpoints]
    events += [feed.event(second, 200.0 + length / 3.0, length, "finish")]
    events += [feed.event(quitter, 60.0 + checkpoints[0] / 2.0, checkpoints[0] + 10.0)]
    events += [feed.event(quitter, 80.0 + checkpoints[0] / 2.0, checkpoints[0] + 20.0, "dnf")]

    async def feed_relay():
        core = RelayCore(frames_per_second=50)
        core.ingest(race.slug, events)
        await core.flush(core.feeds[race.slug])

    async_to_sync(feed_relay)()
    # Someone never started, so the relay cannot call it finished: the organizer stops it.
    race = lifecycle.stop_race(Race.objects.get(pk=race.pk))
    return race, feed


def test_results_csv_and_gpx_of_a_race_with_finishers_dnf_and_dns():
    race, feed = finished_with_dnf_and_dns()
    assert race.status == Race.Status.STOPPED
    first, second, quitter, absent = feed.athletes
    client = Client()
    results = client.get(f"/api/races/{race.slug}/results").json()
    rows = {r["bib"]: r for r in results["results"]}
    assert [r["bib"] for r in results["results"]][:2] == [first.bib, second.bib]
    assert rows[first.bib]["rank"] == 1 and rows[second.bib]["rank"] == 2
    assert rows[first.bib]["finish_s"] == pytest.approx(100.0 + feed.length_m / 4.0, abs=0.1)
    gap = (200.0 + feed.length_m / 3.0) - (100.0 + feed.length_m / 4.0)
    assert rows[second.bib]["gap_s"] == pytest.approx(gap, abs=0.2)
    legs = rows[first.bib]["splits"]
    assert len(legs) == len(results["checkpoints"])
    assert legs[-1]["leg_pace_s_per_km"] == pytest.approx(250.0, abs=1.0)  # 4 m/s
    assert rows[quitter.bib]["status"] == "dnf"
    assert rows[quitter.bib]["last_checkpoint"]["name"] == results["checkpoints"][0]
    assert rows[absent.bib]["status"] == "dns" and rows[absent.bib]["rank"] is None

    page = client.get(f"/races/{race.slug}/results/")
    assert page.status_code == 200
    assert f"DNF after {results['checkpoints'][0]}" in page.content.decode()

    text = client.get(f"/api/races/{race.slug}/results.csv").content.decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[1][1] == first.bib and lines[1][7] == "FINISHED"
    assert {line[7] for line in lines[1:]} == {"FINISHED", "DNF", "DNS"}

    gpx = gpxpy.parse(client.get(f"/api/races/{race.slug}/athletes/{first.bib}/track.gpx").content)
    points = gpx.tracks[0].segments[0].points
    stored = list(Position.objects.filter(athlete=first).order_by("seq"))
    assert len(points) == len(stored) == len(results["checkpoints"]) + 1  # start + each split
    assert [(p.latitude, p.longitude, p.time) for p in points] == [
        (s.latitude, s.longitude, s.time) for s in stored
    ]


def test_a_csv_cell_that_looks_like_a_formula_is_text():
    race = started_race(athletes=2)
    race.athletes.filter(pk=race.athletes.first().pk).update(name='=HYPERLINK("x")')
    text = Client().get(f"/api/races/{race.slug}/results.csv").content.decode()
    names = [line[2] for line in csv.reader(io.StringIO(text))][1:]
    assert '\'=HYPERLINK("x")' in names
    assert not any(name.startswith(("=", "+", "-", "@")) for name in names)


def test_an_unknown_race_or_bib_is_a_404():
    client = Client()
    assert client.get("/api/races/nope/results").status_code == 404
    assert client.get("/api/races/nope/leaderboard?at=10").status_code == 404
    race = started_race(athletes=1)
    assert client.get(f"/api/races/{race.slug}/athletes/999/track.gpx").status_code == 404


def test_analysis_of_two_athletes_per_leg_and_against_the_winner():
    race, feed = finished_with_dnf_and_dns()
    first, second, quitter, _absent = feed.athletes
    client = Client()
    url = f"/api/races/{race.slug}/analysis"
    duel = client.get(url, {"bib": second.bib, "vs": first.bib}).json()
    assert duel["versus"]["bib"] == first.bib
    # The second runs at 3 m/s, the first at 4: every leg after the first loses time.
    for leg in duel["legs"][1:]:
        expected = leg["leg_m"] / 4.0 - leg["leg_m"] / 3.0
        assert leg["gained_s"] == pytest.approx(expected, abs=0.5)
    assert sum(leg["gained_s"] for leg in duel["legs"]) == pytest.approx(
        duel["versus"]["finish_s"] - duel["athlete"]["finish_s"], abs=0.5
    )
    assert duel["athlete"]["moving_s"] > 0 and duel["athlete"]["series"]
    winner = client.get(url, {"bib": quitter.bib}).json()
    assert winner["versus"]["bib"] == first.bib  # the winner by default
    assert winner["athlete"]["status"] == "dnf"
    assert client.get(url).status_code == 400
    assert client.get(url, {"bib": "nobody"}).status_code == 404
    page = client.get(f"/races/{race.slug}/analysis/", {"bib": second.bib, "vs": first.bib})
    assert page.status_code == 200 and b"chart-gained" in page.content
    assert client.get(f"/races/{race.slug}/analysis/", {"bib": "zzz"}).status_code == 404
