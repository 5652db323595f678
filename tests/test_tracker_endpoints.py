"""The /ingest/ endpoints against the real broker: a real recording replayed through each
app's format reaches the race's fanout as seq-less contract events, confirmed; fixes with
nothing to do are answered 200 and counted; hostile input gets 4xx, is counted, and
publishes nothing.

(That the relay then places these events is the relay side's test: until it accepts
seq-less events, what arrived in the fanout is what these tests read.)
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from races import wire
from races.models import DeviceToken, Race
from races.operations import tracker_metrics
from races.trackers.ingest import budgets
from tests.tracker_support import (
    FanoutTap,
    osmand_query,
    owntracks_json,
    recording,
    remove_from_broker,
    start_tracked_race,
    token_for,
    traccar_client_json,
    traccar_forward_json,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

JSON = "application/json"


@pytest.fixture
def tracked(rabbitmq_url):
    """A tracked race started three hours ago, a tap on its fanout, distributed settings."""
    race = start_tracked_race(rabbitmq_url, ago=timedelta(hours=3))
    tap = FanoutTap(rabbitmq_url, race)
    budgets.clear()
    with override_settings(AMQP_URL=rabbitmq_url, EMBEDDED=False):
        yield race, tap
    tap.close()
    remove_from_broker(rabbitmq_url, race)


def counter(metric, *labels) -> float:
    return metric.labels(*labels)._value.get()


def athlete_events(events: list[dict], athlete) -> list[dict]:
    return [e for e in events if e["athlete_id"] == athlete.pk]


def check_contract(event: dict, race: Race, athlete, source: str) -> None:
    assert "seq" not in event and "distance_m" not in event
    assert event["race"] == wire.exchange_name(race.slug) == race.exchange_name
    assert (event["athlete"], event["bib"], event["gender"]) == (
        athlete.name,
        athlete.bib,
        athlete.gender,
    )
    assert event["event"] == "running" and event["source"] == source


def test_a_recording_through_each_app_reaches_the_fanout(tracked):
    race, tap = tracked
    first, second, third = race.athletes.order_by("pk")
    forwarded = race.athletes.order_by("pk")[0]  # a Traccar server forwards for athlete 1 too
    points = recording(race.started_at)[::40]  # 14 fixes spread over the whole course
    client = Client()
    tokens = {a.pk: token_for(a) for a in (first, second, third)}
    accepted_before = counter(tracker_metrics.TRACKER_FIXES_ACCEPTED, "owntracks")

    for point in points:
        assert client.get(osmand_query(tokens[first.pk], point)).status_code == 200
        answer = client.post("/ingest/osmand/", traccar_client_json(tokens[second.pk], point), JSON)
        assert answer.status_code == 200 and answer.json() == {"published": 1}
        owntracks = client.post(
            f"/ingest/owntracks/{tokens[third.pk]}/", owntracks_json(point), JSON
        )
        assert owntracks.status_code == 200 and owntracks.json() == []
    for point in points[:3]:
        body = traccar_forward_json(tokens[forwarded.pk], point)
        assert client.post("/ingest/traccar/", body, JSON).status_code == 200

    events = tap.drain()
    assert len(events) == 3 * len(points) + 3
    assert counter(tracker_metrics.TRACKER_FIXES_ACCEPTED, "owntracks") == accepted_before + len(
        points
    )
    osmand = [e for e in athlete_events(events, first) if e["source"] == "osmand"]
    for event, point in zip(osmand, points, strict=True):
        check_contract(event, race, first, "osmand")
        assert event["location"] == {"latitude": point.latitude, "longitude": point.longitude}
        assert event["time"] == wire.iso(point.time.replace(microsecond=0))
        assert event["speed_mps"] == pytest.approx(3.0, abs=0.01)  # sent in knots
        assert event["battery_pct"] == 87 and event["accuracy_m"] == pytest.approx(6.0)
    client9 = athlete_events(events, second)
    check_contract(client9[0], race, second, "osmand")
    assert client9[0]["battery_pct"] == 64.0 and client9[0]["accuracy_m"] == 4.5
    assert [e["time"] for e in client9] == [wire.iso(p.time) for p in points]
    own = athlete_events(events, third)
    check_contract(own[0], race, third, "owntracks")
    assert own[0]["speed_mps"] == pytest.approx(3.06, abs=0.01)  # 11 km/h, as OwnTracks rounds
    assert own[0]["accuracy_m"] == 8 and own[0]["battery_pct"] == 55
    via_traccar = [e for e in events if e["source"] == "traccar"]
    assert len(via_traccar) == 3 and via_traccar[0]["battery_pct"] == 71
    assert "accuracy_m" not in via_traccar[0]  # Traccar's 0.0 means "not reported"


def test_a_batch_sent_late_and_out_of_order_is_published_as_sent(tracked):
    """A phone that was offline sends its queue late, shuffled: every fix goes through with
    its own time (the relay orders them by seq, given from that time)."""
    race, tap = tracked
    athlete = race.athletes.first()
    token = token_for(athlete)
    points = recording(race.started_at)[100:130]
    shuffled = points[:]
    random.Random(14).shuffle(shuffled)
    client = Client()
    for point in shuffled:
        answer = client.post("/ingest/osmand/", traccar_client_json(token, point), JSON)
        assert answer.status_code == 200, answer.content
    events = tap.drain()
    assert [e["time"] for e in events] == [wire.iso(p.time) for p in shuffled]
    assert sorted(e["time"] for e in events) == [wire.iso(p.time) for p in points]


def test_fixes_with_nothing_to_do_are_answered_200_counted_and_not_published(tracked, settings):
    race, tap = tracked
    athlete = race.athletes.first()
    token = token_for(athlete)
    point = recording(race.started_at)[10]
    client = Client()

    def ignored(reason: str) -> float:
        return counter(tracker_metrics.TRACKER_FIXES_IGNORED, "osmand", reason)

    cases = {
        "before_start": point.time - timedelta(hours=4),
        "in_future": timezone.now() + timedelta(minutes=5),
    }
    for reason, moment in cases.items():
        before = ignored(reason)
        sent = type(point)(point.latitude, point.longitude, point.elevation, moment)
        answer = client.post("/ingest/osmand/", traccar_client_json(token, sent), JSON)
        assert answer.status_code == 200 and answer.json()["ignored"] == {reason: 1}
        assert ignored(reason) == before + 1
    before = ignored("poor_accuracy")
    assert client.get(osmand_query(token, point) + "&accuracy=250").json()["ignored"] == {
        "poor_accuracy": 1
    }
    assert ignored("poor_accuracy") == before + 1
    Race.objects.filter(pk=race.pk).update(status=Race.Status.FINISHED)
    answer = client.get(osmand_query(token, point))
    assert answer.status_code == 200 and "not running" in answer.json()["reason"]
    Race.objects.filter(pk=race.pk).update(status=Race.Status.RUNNING, tracking="simulated")
    assert client.get(osmand_query(token, point)).json()["ignored"] == {"simulated_race": 1}
    other = client.post(f"/ingest/owntracks/{token}/", '{"_type": "transition"}', JSON)
    assert other.status_code == 200 and other.json() == []
    assert tap.drain() == []


def client9(latitude: str) -> bytes:
    """A Traccar Client 9 body whose latitude is `latitude`, as written (JSON text)."""
    return (
        b'{"location": {"timestamp": "2026-01-01T00:00:00Z", "coords": {"latitude": '
        + latitude.encode()
        + b', "longitude": 2}}}'
    )


HOSTILE_BODIES = [
    b"",
    b"not json",
    b"[]",
    b"null",
    b'{"location": "here"}',
    b'{"location": {"timestamp": "yesterday", "coords": {"latitude": 1, "longitude": 2}}}',
    *(client9(junk) for junk in ("NaN", "1e999", "91", '"x"', "true", "9" * 400, "[]")),
    b"[" * 5000,
    b'{"_type": "location", "lat": [], "lon": {}, "tst": "soon"}',
    b'{"position": {"latitude": 1, "longitude": 2, "fixTime": 1e300}, "device": {"uniqueId": 7}}',
    '{"device_id": "\u00e9\u0000"}'.encode(),
    b"\xff\xfe\x00garbage",
]


@pytest.mark.parametrize(
    "path", ["/ingest/osmand/", "/ingest/owntracks/{token}/", "/ingest/traccar/"]
)
def test_junk_is_a_400_with_a_reason_counted_and_never_published(tracked, path):
    race, tap = tracked
    token = token_for(race.athletes.first())
    source = path.split("/")[2]
    for body in HOSTILE_BODIES:
        before = counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, source, "malformed")
        answer = Client().post(path.format(token=token), body, JSON)
        assert answer.status_code == 400, (body, answer.content)
        assert answer.json()["error"]
        assert counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, source, "malformed") == before + 1
    assert tap.drain() == []


OSMAND_JUNK = [
    "", "id=&lat=1&lon=2&timestamp=1", "id={t}&lat=abc&lon=2&timestamp=1764547200",
    "id={t}&lat=1&lon=2", "id={t}&lat=1&lon=2&timestamp=99999999999999999999999",
    "id={t}&lat=nan&lon=2&timestamp=1764547200", "id={t}&lat=1&lon=inf&timestamp=1764547200",
    "id={t}&lat=1&lon=2&timestamp=1e5", "id={t}&location=1;2&timestamp=1764547200",
    "id={t}&lat=1&lon=2&timestamp=1764547200&speed=fast", "id={t}&lat=1&lon=2&timestamp=-5",
]  # fmt: skip


def test_osmand_junk_parameters_are_400(tracked):
    race, tap = tracked
    token = token_for(race.athletes.first())
    for query in OSMAND_JUNK:
        answer = Client().get("/ingest/osmand/?" + query.format(t=token))
        assert answer.status_code == 400 and answer.json()["error"], query
    crowded = "&".join(f"x{i}=1" for i in range(2000))  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    answer = Client().get(f"/ingest/osmand/?id={token}&{crowded}")
    assert answer.status_code == 400 and answer.json()["error"]
    form = f"id={token}&lat=1&lon=2&timestamp=now"
    answer = Client().post("/ingest/osmand/", form, "application/x-www-form-urlencoded")
    assert answer.status_code == 400 and "timestamp" in answer.json()["error"]
    assert tap.drain() == []


def test_unknown_and_revoked_tokens_are_401_and_403_and_counted(tracked):
    race, tap = tracked
    athlete = race.athletes.first()
    token = token_for(athlete)
    point = recording(race.started_at)[5]
    client = Client()
    before = counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, "owntracks", "unknown_token")
    unknown = client.post("/ingest/owntracks/not-a-token/", owntracks_json(point), JSON)
    assert unknown.status_code == 401 and "unknown" in unknown.json()["error"]
    assert (
        counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, "owntracks", "unknown_token")
        == before + 1
    )
    DeviceToken.objects.filter(token=token).update(revoked_at=timezone.now())
    revoked = client.get(osmand_query(token, point))
    assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]
    forwarded = client.post("/ingest/traccar/", traccar_forward_json(token, point), JSON)
    assert forwarded.status_code == 403
    assert tap.drain() == []


def test_a_huge_body_is_413_before_it_is_read(tracked):
    race, tap = tracked
    token = token_for(race.athletes.first())
    huge = b'{"_type": "location", "pad": "' + b"x" * 100_000 + b'"}'
    for path in ("/ingest/osmand/", f"/ingest/owntracks/{token}/", "/ingest/traccar/"):
        answer = Client().post(path, huge, JSON)
        assert answer.status_code == 413 and "limit" in answer.json()["error"]
    assert tap.drain() == []


def test_a_flood_from_one_token_is_429_and_other_athletes_go_through(tracked, settings):
    settings.TRACKER_FIXES_PER_SECOND = 0.5
    settings.TRACKER_FIX_BURST = 5
    race, tap = tracked
    flooder, other = race.athletes.order_by("pk")[:2]
    flood_token, other_token = token_for(flooder), token_for(other)
    point = recording(race.started_at)[20]
    client = Client()
    before = counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, "osmand", "rate_limited")
    statuses = [client.get(osmand_query(flood_token, point)).status_code for _ in range(30)]
    assert statuses[:5] == [200] * 5 and set(statuses[6:]) == {429}
    assert (
        counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, "osmand", "rate_limited") >= before + 24
    )
    assert client.get(osmand_query(other_token, point)).status_code == 200
    events = tap.drain()
    assert len(athlete_events(events, other)) == 1
    assert len(athlete_events(events, flooder)) <= 6


def test_wrong_methods_are_refused_without_a_500(tracked):
    client = Client()
    assert client.put("/ingest/osmand/").status_code == 405
    assert client.get("/ingest/traccar/").status_code == 405
    assert client.get("/ingest/owntracks/x/").status_code == 405


def test_a_broker_that_does_not_confirm_is_a_503_the_app_retries(tracked):
    race, tap = tracked
    token = token_for(race.athletes.first())
    point = recording(race.started_at)[7]
    before = counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, "osmand", "unavailable")
    with override_settings(AMQP_URL="amqp://guest:guest@127.0.0.1:1/"):  # nobody listens
        answer = Client().get(osmand_query(token, point))
    assert answer.status_code == 503 and "retry" in answer.json()["error"]
    assert counter(tracker_metrics.TRACKER_REQUESTS_REFUSED, "osmand", "unavailable") == before + 1
    assert Client().get(osmand_query(token, point)).status_code == 200  # the retry goes through
    assert len(tap.drain()) == 1


def test_fuzzed_parameters_never_make_a_500(tracked):
    """Random junk in every OsmAnd parameter and OwnTracks field: 200, 400 or 401 only, and
    only fixes answered `published` reach the fanout."""
    race, tap = tracked
    token = token_for(race.athletes.first())
    rng = random.Random(1414)
    junk = ["", "0", "-1", "1e308", "-1e308", "nan", "inf", "9" * 30, "1.5.5", "\x00", "é",
            "[]", "{}", "null", "true", "12:00", "2026-02-30T25:61:00Z", " 48.2 ",
            "0x10"]  # fmt: skip
    good = {"id": token, "lat": "48.2", "lon": "16.3",
            "timestamp": str(int(race.started_at.timestamp()) + 60)}  # fmt: skip
    client = Client()
    published = 0
    for _ in range(150):
        params = dict(good)
        for key in rng.sample([*good, "speed", "altitude", "accuracy", "hdop", "batt"], 2):
            params[key] = rng.choice(junk)
        answer = client.get("/ingest/osmand/", params)
        assert answer.status_code in (200, 400, 401), (params, answer.content)
        published += answer.json().get("published", 0) if answer.status_code == 200 else 0
        body = {"_type": "location", "lat": 48.2, "lon": 16.3, "tst": good["timestamp"]}
        body[rng.choice(["lat", "lon", "tst", "vel", "acc", "alt", "batt"])] = rng.choice(
            [*junk, 1e400, -5, 10**30, [1], {"a": 1}, None, True]
        )
        answer = client.post(f"/ingest/owntracks/{token}/", body, JSON)
        assert answer.status_code in (200, 400), (body, answer.content)
        if answer.status_code == 200:
            published += json.loads(answer["X-RaceWeb-Outcome"])["published"]
    assert len(tap.drain()) == published
