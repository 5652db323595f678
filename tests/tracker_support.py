"""A tracked race on the real broker, and what each tracking app sends, for the tracker tests.

The recording is `samples/gpx/trailrun-vtr-classic-2019.gpx` (a copy of
`../shared/gpx/`; MIT, TrailrunningVienna/Trail365, see samples/gpx/LICENSES.txt): a
real Garmin recording of the VTR Classic course, which is also the test race's course.
Its times (2017) are shifted so that it starts at the race's start; the apps' formats
are as each app writes them.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.test import override_settings
from django.utils import timezone
from kombu import Connection

from races import wire
from races.models import DeviceToken, Race
from races.organizer import lifecycle
from races.organizer.gpx import RecordedPoint, parse_recording
from tests.conftest import SAMPLE_GPX, raceweb_processes, require_service
from tests.factories import make_race, unique_name

RECORDING = "trailrun-vtr-classic-2019.gpx"
SHARED_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# The relay below listens for race notices here, not on the real control exchange.
RELAY_CONTROL_EXCHANGE = f"{wire.CONTROL_EXCHANGE}.test-{uuid.uuid4().hex[:8]}"
KNOTS_PER_MPS = 3600.0 / 1852.0


def recording(started_at: datetime) -> list[RecordedPoint]:
    """The recording's points, shifted to start at `started_at`."""
    points = parse_recording((SAMPLE_GPX / RECORDING).read_bytes())
    shift = started_at - points[0].time
    return [RecordedPoint(p.latitude, p.longitude, p.elevation, p.time + shift) for p in points]


def start_tracked_race(amqp_url: str, *, athletes: int = 3, ago: timedelta) -> Race:
    """A tracked race started `ago` (its exchange and relay queue declared on the broker;
    its simulation segment, if any, goes to a queue nobody reads). `remove_from_broker`
    deletes what this declared."""
    race = make_race(unique_name("Tracked"), athletes=athletes, tracking=Race.Tracking.TRACKED)
    idle = idle_queue(race)
    with override_settings(AMQP_URL=amqp_url, EMBEDDED=False, SIMULATION_QUEUE=idle):
        race = lifecycle.start_race(race)
    started_at = (timezone.now() - ago).replace(microsecond=0)  # the apps send whole seconds
    Race.objects.filter(pk=race.pk).update(started_at=started_at)
    race.refresh_from_db()
    return race


def idle_queue(race: Race) -> str:
    return f"nobody-{race.slug[-10:]}"


def remove_from_broker(amqp_url: str, race: Race) -> None:
    """The race's relay queue and exchange, and the idle simulation queue (the shared
    broker must not collect a quorum queue per test run)."""
    with Connection(amqp_url) as connection:
        channel = connection.default_channel
        for queue in (wire.relay_queue_name(race.slug), idle_queue(race)):
            channel.queue_delete(queue)
        for exchange in (wire.exchange_name(race.slug), idle_queue(race)):
            channel.exchange_delete(exchange)


@pytest.fixture(scope="module")
def relay(django_db_setup, django_db_blocker, tmp_path_factory):
    """The real relay process (`manage.py relay`) on the shared broker, for a module."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    with django_db_blocker.unblock():
        processes = raceweb_processes(
            SHARED_AMQP_URL,
            tmp_path_factory.mktemp("relay"),
            RELAY_CONTROL_EXCHANGE=RELAY_CONTROL_EXCHANGE,
        )
    try:
        processes.relay()
        yield processes
    finally:
        processes.stop_all()
        print(processes.logs())
        with Connection(SHARED_AMQP_URL) as conn:
            conn.default_channel.exchange_delete(RELAY_CONTROL_EXCHANGE)


def token_for(athlete, label: str = "phone") -> str:
    return DeviceToken.objects.create(athlete=athlete, label=label).token


class FanoutTap:
    """A private queue bound to a race's fanout on the real broker: what arrived there."""

    def __init__(self, amqp_url: str, race: Race) -> None:
        self.connection = Connection(amqp_url)
        self.channel = self.connection.channel()
        self.queue, _, _ = self.channel.queue_declare(queue="", exclusive=True, auto_delete=True)
        self.channel.queue_bind(self.queue, exchange=wire.exchange_name(race.slug))

    def drain(self) -> list[dict]:
        """Every message on the queue now (publishes were confirmed before we read)."""
        events = []
        while True:
            message = self.channel.basic_get(self.queue, no_ack=True)
            if message is None:
                return events
            events.append(json.loads(message.body))

    def close(self) -> None:
        self.connection.close()


# ---- each app's request, for one point --------------------------------------------------


def osmand_query(token: str, point: RecordedPoint, speed_mps: float = 3.0) -> str:
    """OsmAnd's online tracking URL as it fills it in (Traccar Client < 9 alike)."""
    return "/ingest/osmand/?" + urlencode(
        {
            "id": token,
            "timestamp": int(point.time.timestamp()),
            "lat": point.latitude,
            "lon": point.longitude,
            "altitude": point.elevation,
            "speed": round(speed_mps * KNOTS_PER_MPS, 3),
            "bearing": 90.0,
            "hdop": 1.2,
            "batt": 87,
        }
    )


def traccar_client_json(token: str, point: RecordedPoint, speed_mps: float = 3.0) -> str:
    """Traccar Client 9's POST body."""
    return json.dumps(
        {
            "location": {
                "timestamp": point.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "coords": {
                    "latitude": point.latitude,
                    "longitude": point.longitude,
                    "accuracy": 4.5,
                    "speed": speed_mps,
                    "heading": 90.0,
                    "altitude": point.elevation,
                },
                "is_moving": True,
                "odometer": 1234.5,
                "event": "motionchange",
                "battery": {"level": 0.64, "is_charging": False},
                "activity": {"type": "running"},
                "extras": {},
            },
            "device_id": token,
        }
    )


def owntracks_json(point: RecordedPoint, speed_mps: float = 3.0) -> str:
    """An OwnTracks location message (HTTP mode)."""
    return json.dumps(
        {
            "_type": "location",
            "tid": "js",
            "tst": int(point.time.timestamp()),
            "lat": point.latitude,
            "lon": point.longitude,
            "alt": round(point.elevation or 0),
            "acc": 8,
            "vel": round(speed_mps * 3.6),
            "batt": 55,
            "bs": 1,
            "conn": "m",
            "t": "u",
            "created_at": int(point.time.timestamp()),
        }
    )


def traccar_forward_json(unique_id: str, point: RecordedPoint, speed_mps: float = 3.0) -> str:
    """A Traccar server's position forward (forward.type=json)."""
    fix_time = point.time.isoformat(timespec="milliseconds")
    return json.dumps(
        {
            "position": {
                "id": 12345,
                "attributes": {"batteryLevel": 71, "distance": 15.4, "motion": True},
                "deviceId": 10,
                "protocol": "gt06",
                "serverTime": fix_time,
                "deviceTime": fix_time,
                "fixTime": fix_time,
                "outdated": False,
                "valid": True,
                "latitude": point.latitude,
                "longitude": point.longitude,
                "altitude": point.elevation,
                "speed": speed_mps * KNOTS_PER_MPS,
                "course": 180.0,
                "address": None,
                "accuracy": 0.0,
                "network": None,
            },
            "device": {
                "id": 10,
                "name": "Bib 17 watch",
                "uniqueId": unique_id,
                "status": "online",
                "disabled": False,
            },
        }
    )
