"""The JSON API: races, course GeoJSON, leaderboard, positions, one athlete's track."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers

from races.relay.core import RelayCore
from races.spectators import api
from tests.factories import EventFeed, make_race, started_race, unique_name

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def run_frames(race, seconds=(30, 60, 90)) -> EventFeed:
    """Starts plus one tick per second given, each stored as its own frame by a relay."""
    feed = EventFeed(race)

    async def relay():
        core = RelayCore(frames_per_second=20)
        for events in [feed.starts(), *(feed.tick(s) for s in seconds)]:
            core.ingest(race.slug, events)
            await core.flush(core.feeds[race.slug])

    async_to_sync(relay)()
    return feed


def test_race_list_and_detail(client):
    race = make_race(unique_name(), athletes=3)
    listing = client.get("/api/races/").json()
    entry = next(r for r in listing["races"] if r["slug"] == race.slug)
    assert entry["status"] == "draft"
    assert entry["api"]["socket"] == f"/ws/races/{race.slug}/"
    detail = client.get(f"/api/races/{race.slug}/").json()
    assert detail["athletes"] == 3
    assert detail["course"]["length_m"] == pytest.approx(race.course.length_m)
    assert client.get("/api/races/nope/").status_code == 404


def test_course_geojson_has_the_line_with_distances_and_the_checkpoints(client):
    race = make_race(unique_name(), athletes=0)
    response = client.get(f"/api/races/{race.slug}/course.geojson")
    assert response["Content-Type"] == "application/geo+json"
    line, *checkpoints = response.json()["features"]
    coordinates = line["geometry"]["coordinates"]
    assert len(coordinates) == len(race.course.points)
    assert line["properties"]["simplified"] is False
    assert line["properties"]["distances_m"][-1] == pytest.approx(race.course.length_m, abs=0.1)
    first = race.course.points[0]
    assert coordinates[0][:2] == [first[1], first[0]]  # GeoJSON is lon, lat
    kinds = [c["properties"]["kind"] for c in checkpoints]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert len(checkpoints) == race.checkpoints.count()


def test_a_very_long_course_is_simplified_for_the_map(client):
    race = make_race(unique_name(), gpx="large-roadtrip-23k-points-12-segments.gpx", athletes=0)
    line = client.get(f"/api/races/{race.slug}/course.geojson").json()["features"][0]
    coordinates, distances = line["geometry"]["coordinates"], line["properties"]["distances_m"]
    points = race.course.points
    assert len(points) > api.MAX_COURSE_POINTS >= len(coordinates) > 500
    assert line["properties"]["simplified"] is True
    assert len(distances) == len(coordinates)
    assert distances == sorted(distances)
    assert coordinates[0][:2] == [points[0][1], points[0][0]]
    assert coordinates[-1][:2] == [points[-1][1], points[-1][0]]


def test_leaderboard_is_the_live_state_in_order(client):
    race = started_race(athletes=4)
    feed = run_frames(race)
    board = client.get(f"/api/races/{race.slug}/leaderboard").json()
    assert board["frame"] == 4
    assert [a["id"] for a in board["athletes"]] == [a.pk for a in feed.athletes]
    assert [a["rank"] for a in board["athletes"]] == [1, 2, 3, 4]
    assert board["athletes"][0]["distance_m"] == pytest.approx(360.0)


def test_positions_since_a_frame_and_at_a_time(client):
    race = started_race(athletes=3)
    feed = run_frames(race)
    since = client.get(f"/api/races/{race.slug}/positions?since_frame=2").json()
    assert since["frame"] == 4 and since["more"] is False
    assert {p["frame"] for p in since["positions"]} == {3, 4}
    assert len(since["positions"]) == 6
    moment = (race.started_at + timedelta(seconds=75)).isoformat()
    snapshot = client.get(f"/api/races/{race.slug}/positions", {"at": moment}).json()
    by_athlete = {p["athlete_id"]: p for p in snapshot["positions"]}
    assert set(by_athlete) == {a.pk for a in feed.athletes}
    assert by_athlete[feed.athletes[0].pk]["distance_m"] == pytest.approx(240.0)  # at 60 s
    bad = client.get(f"/api/races/{race.slug}/positions", {"at": "soon"})
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]


def test_one_athletes_track(client):
    race = started_race(athletes=2)
    feed = run_frames(race)
    athlete = feed.athletes[1]
    track = client.get(f"/api/races/{race.slug}/athletes/{athlete.bib}/track").json()
    assert track["athlete"]["name"] == athlete.name
    assert [p["event"] for p in track["positions"]] == ["start", "running", "running", "running"]
    distances = [p["distance_m"] for p in track["positions"]]
    assert distances == sorted(distances) and distances[-1] > 0
    assert client.get(f"/api/races/{race.slug}/athletes/999/track").status_code == 404
