"""Phones and a Traccar server feed a tracked race end to end: each app's requests, exactly
as it formats them, through the ingest endpoints, the real RabbitMQ and the real relay
process (`manage.py relay`); the results are the recording's.

Four athletes run the same real recording (tests/tracker_support.py) at their own pace, each
through another door: OsmAnd's query, Traccar Client 9's JSON, OwnTracks (with a stretch
held back by the phone while offline and sent late, newest first, when it is back online)
and a Traccar server's forward.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from harness.waiting import wait_until
from races.models import Position, Race
from tests.tracker_support import (
    RELAY_CONTROL_EXCHANGE,
    osmand_query,
    owntracks_json,
    recording,
    relay,  # noqa: F401 (the module's relay process, a fixture)
    remove_from_broker,
    start_tracked_race,
    token_for,
    traccar_client_json,
    traccar_forward_json,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PACE = {"osmand": 1.0, "traccar-client": 0.9, "owntracks": 1.2, "traccar-forward": 1.1}
LATE = slice(200, 260)  # the OwnTracks phone's offline stretch
LATE_INDEXES = range(LATE.start, LATE.stop)
DEADLINE_S = 90.0


def paced(points, started_at, pace):
    """The recording as an athlete `pace` times slower runs it."""
    return [
        type(p)(p.latitude, p.longitude, p.elevation, started_at + (p.time - started_at) * pace)
        for p in points
    ]


def send(client, door: str, token: str, point) -> None:
    json = "application/json"
    if door == "osmand":
        answer = client.get(osmand_query(token, point))
    elif door == "traccar-client":
        answer = client.post("/ingest/osmand/", traccar_client_json(token, point), json)
    elif door == "owntracks":
        answer = client.post(f"/ingest/owntracks/{token}/", owntracks_json(point), json)
    else:
        answer = client.post("/ingest/traccar/", traccar_forward_json(token, point), json)
    assert answer.status_code == 200, answer.content


@pytest.mark.usefixtures("relay")
def test_every_app_feeds_a_tracked_race_whose_results_are_the_recording(client, settings):
    settings.TRACKER_FIXES_PER_SECOND = 0  # four phones replaying a whole race in seconds
    with override_settings(RELAY_CONTROL_EXCHANGE=RELAY_CONTROL_EXCHANGE):
        race = start_tracked_race(AMQP_URL, athletes=len(PACE), ago=timedelta(hours=3))
    try:
        athletes = dict(zip(PACE, race.athletes.order_by("bib"), strict=True))
        points = recording(race.started_at)
        with override_settings(EMBEDDED=False, AMQP_URL=AMQP_URL):
            for door, athlete in athletes.items():
                token = token_for(athlete)
                track = paced(points, race.started_at, PACE[door])
                for index, point in enumerate(track):
                    if door == "owntracks" and index in LATE_INDEXES:
                        continue  # offline: the phone keeps these
                    if door == "owntracks" and index == LATE.stop:
                        for late in reversed(track[LATE]):  # back online, newest first
                            send(client, door, token, late)
                    send(client, door, token, point)

        wait_until(
            lambda: Race.objects.get(pk=race.pk).status == Race.Status.FINISHED,
            DEADLINE_S,
            "the relay to finish the race once every athlete crossed the line",
        )
        recorded_s = (points[-1].time - points[0].time).total_seconds()
        results = client.get(f"/api/races/{race.slug}/results").json()["results"]
        expected = sorted(PACE, key=PACE.get)
        assert [row["name"] for row in results] == [athletes[door].name for door in expected]
        for row, door in zip(results, expected, strict=True):
            assert row["status"] == "finished"
            assert row["finish_s"] == pytest.approx(recorded_s * PACE[door], abs=1.0)
        # The late stretch is stored (history), though it never moved the athlete back.
        late = paced(points, race.started_at, PACE["owntracks"])[LATE]
        late_times = {p.time.replace(microsecond=0) for p in late}  # OwnTracks: whole seconds
        stored = set(
            Position.objects.filter(athlete=athletes["owntracks"]).values_list("time", flat=True)
        )
        assert len(late_times & stored) >= len(late_times) - 2  # but GPS jumps over 12 m/s
    finally:
        remove_from_broker(AMQP_URL, race)
