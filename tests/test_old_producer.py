"""The old system's producer, as it was written, feeds a tracked race.

The producer below has the old system's code shape: pika, one thread per athlete, each
with its own connection, `exchange_declare(race-<name>, fanout, durable=True)`, one JSON
message per position in the old contract (`athlete` name, `gender`, `race`, `location`,
`elevation`, `time`, `event`: no bib, no id, no seq). The positions are a real recording
(`samples/gpx/trailrun-vtr-classic-2019.gpx`, MIT, Trail365; see samples/gpx/SOURCES.md and
LICENSES.txt), which is also the race's course. It runs against the real RabbitMQ and the
real relay process (`manage.py relay`); the race's results must be the recording's.
"""

import json
import threading
import uuid
from datetime import timedelta

import gpxpy
import pika
import pytest
from django.test import override_settings
from django.utils import timezone
from kombu import Connection

from harness.waiting import wait_until
from races import wire
from races.models import Position, Race
from races.organizer import lifecycle
from tests.conftest import SAMPLE_GPX, raceweb_processes
from tests.factories import make_race, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
CONTROL_EXCHANGE = f"{wire.CONTROL_EXCHANGE}.test-{uuid.uuid4().hex[:8]}"
RECORDING = "trailrun-vtr-classic-2019.gpx"
# Each athlete runs the recording at their own pace: 1.0 is the recording itself.
PACE = {0: 1.0, 1: 0.9, 2: 1.2}
# Two of the recording's 530 fixes jump at over 12 m/s from the one before (GPS noise):
# the relay ignores them (impossible speed), for each athlete.
GPS_JUMPS = 2
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def relay(django_db_setup, django_db_blocker, tmp_path_factory):
    from tests.conftest import require_service

    require_service("RabbitMQ", "127.0.0.1", 5672)
    with django_db_blocker.unblock():
        processes = raceweb_processes(
            AMQP_URL,
            tmp_path_factory.mktemp("old-producer"),
            RELAY_CONTROL_EXCHANGE=CONTROL_EXCHANGE,
        )
    try:
        processes.relay()
        yield processes
    finally:
        processes.stop_all()
        print(processes.logs())
        with Connection(AMQP_URL) as conn:
            conn.default_channel.exchange_delete(CONTROL_EXCHANGE)


@pytest.fixture
def tracked_race():
    """A tracked race on the recording's course that started long enough ago for every
    replayed fix to be in the past (the relay refuses fixes from the future)."""
    race = make_race(unique_name("Old producer"), gpx=RECORDING, athletes=3, tracking="tracked")
    with override_settings(
        EMBEDDED=False, AMQP_URL=AMQP_URL, RELAY_CONTROL_EXCHANGE=CONTROL_EXCHANGE
    ):
        race = lifecycle.start_race(race)  # declares the exchange and the relay's queue
    Race.objects.filter(pk=race.pk).update(started_at=timezone.now() - timedelta(hours=3))
    race.refresh_from_db()
    yield race
    with Connection(AMQP_URL) as conn:
        conn.default_channel.queue_delete(wire.relay_queue_name(race.slug))
        conn.default_channel.exchange_delete(wire.exchange_name(race.slug))


def recording() -> list[gpxpy.gpx.GPXTrackPoint]:
    with (SAMPLE_GPX / RECORDING).open(encoding="utf-8") as handle:
        gpx = gpxpy.parse(handle)
    return [p for t in gpx.tracks for s in t.segments for p in s.points]


# ---- the old system's producer, in its own shape ------------------------------------------


def athlete_thread(exchange, athlete, gender, positions, started_at, pace):
    # The old code built `exchange` from the race name; here races.wire spells it (the one
    # place race names are spelled, tests/test_wire_boundaries.py).
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=True)
    first = positions[0].time
    for point in positions:
        at = started_at + (point.time - first) * pace
        message = {
            "athlete": athlete,
            "gender": gender,
            "race": exchange,
            "location": {"latitude": point.latitude, "longitude": point.longitude},
            "elevation": point.elevation,
            "time": at.isoformat(),
            "event": "running",
        }
        channel.basic_publish(exchange=exchange, routing_key="", body=json.dumps(message))
    connection.close()


# -------------------------------------------------------------------------------------------


def test_the_old_producer_feeds_a_tracked_race_whose_results_are_the_recording(
    relay, tracked_race, client
):
    race = tracked_race
    athletes = list(race.athletes.order_by("bib"))
    positions = recording()
    exchange = wire.exchange_name(race.slug)
    threads = [
        threading.Thread(
            target=athlete_thread,
            args=(exchange, a.name, a.gender, positions, race.started_at, PACE[i]),
        )
        for i, a in enumerate(athletes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)

    wait_until(
        lambda: Race.objects.get(pk=race.pk).status == Race.Status.FINISHED,
        DEADLINE_S,
        "the relay to finish the race once every athlete crossed the line",
    )
    recorded_s = (positions[-1].time - positions[0].time).total_seconds()
    results = client.get(f"/api/races/{race.slug}/results").json()
    by_name = {row["name"]: row for row in results["results"]}
    expected_order = sorted(range(len(athletes)), key=lambda i: PACE[i])
    assert [row["name"] for row in results["results"]] == [athletes[i].name for i in expected_order]
    for i, athlete in enumerate(athletes):
        row = by_name[athlete.name]
        assert row["status"] == "finished"
        assert row["finish_s"] == pytest.approx(recorded_s * PACE[i], abs=0.5)
    # Every fix of the recording is stored, but the GPS jumps the relay ignored.
    stored = Position.objects.filter(race=race).count()
    assert stored == len(athletes) * (len(positions) - GPS_JUMPS)
