"""The WebSocket protocol (docs/ARCHITECTURE.md), end to end on the in-memory layer."""

import gc
import json
import tracemalloc

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from races.organizer import lifecycle
from races.relay.core import RelayCore
from races.spectators import race_hub
from races.spectators.routing import websocket_urlpatterns
from races.spectators.sockets import MAX_CLIENT_MESSAGE
from tests.factories import EventFeed, make_race, started_race, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]

application = URLRouter(websocket_urlpatterns)


class Live:
    """A started race, its event feed, and a relay core producing its frames on demand."""

    def __init__(self, race, feed) -> None:
        self.race, self.feed = race, feed
        self.core = RelayCore(frames_per_second=20)
        self.second = 0

    @classmethod
    async def start(cls, athletes: int = 4) -> "Live":
        race = await sync_to_async(started_race)(athletes=athletes)
        return cls(race, await sync_to_async(EventFeed)(race))

    async def frame(self, events=None) -> None:
        if events is None:
            self.second += 30
            events = self.feed.starts() if self.second == 30 else self.feed.tick(self.second)
        self.core.ingest(self.race.slug, events)
        await self.core.flush(self.core.feeds[self.race.slug])


async def connect(path: str, **kwargs) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, **kwargs)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def receive(communicator) -> dict:
    return json.loads(await communicator.receive_from(timeout=5))


async def closed_with(communicator) -> int:
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return output["code"]


# ---- snapshot and updates -----------------------------------------------------------------


async def test_snapshot_on_connect_then_consecutive_updates():
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    snapshot = await receive(spectator)
    assert snapshot["type"] == "snapshot" and snapshot["frame"] == 0
    assert snapshot["race"]["status"] == "running"
    assert snapshot["course"]["length_m"] == pytest.approx(live.feed.length_m)
    assert {a["status"] for a in snapshot["athletes"]} == {"not_started"}
    assert len(snapshot["athletes"]) == 4
    held = {a["id"]: a for a in snapshot["athletes"]}
    for expected in (1, 2, 3):
        await live.frame()
        update = await receive(spectator)
        assert (update["type"], update["frame"]) == ("update", expected)
        for athlete in update["athletes"]:
            held[athlete["id"]].update(athlete)  # updates merge by id
    assert [held[a.pk]["rank"] for a in live.feed.athletes] == [1, 2, 3, 4]
    assert {a["status"] for a in held.values()} == {"running"}
    await spectator.disconnect()


async def test_a_spectator_joining_mid_race_gets_every_athlete_as_of_the_current_frame():
    live = await Live.start(athletes=6)
    for _ in range(3):
        await live.frame()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    snapshot = await receive(spectator)
    assert snapshot["frame"] == 3
    assert len(snapshot["athletes"]) == 6
    leader = snapshot["athletes"][0]
    assert leader["rank"] == 1 and leader["distance_m"] == pytest.approx(90 * 4.0, abs=0.1)
    await live.frame()
    assert (await receive(spectator))["frame"] == 4
    await spectator.disconnect()


async def test_reconnecting_with_an_old_frame_number_gets_the_missed_frames():
    live = await Live.start()
    first = await connect(f"/ws/races/{live.race.slug}/")
    await receive(first)
    for _ in range(2):
        await live.frame()
        await receive(first)
    await first.disconnect()
    for _ in range(3):  # frames 3, 4, 5 happen while it is away
        await live.frame()
    again = await connect(f"/ws/races/{live.race.slug}/?resume=2")
    assert [(await receive(again))["frame"] for _ in range(3)] == [3, 4, 5]
    await live.frame()
    assert (await receive(again))["frame"] == 6
    await again.disconnect()


async def test_resume_message_answers_missed_frames_or_a_snapshot_when_too_old():
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    await receive(spectator)
    for _ in range(3):
        await live.frame()
        await receive(spectator)
    await spectator.send_json_to({"type": "resume", "seq": 1})
    assert [(await receive(spectator))["frame"] for _ in range(2)] == [2, 3]
    hub = await race_hub.race_hub(live.race.slug)
    hub.ring.popleft()  # frame 1 ...
    hub.ring.popleft()  # ... and 2 fell out of the ring: 3 alone cannot bring it up to date
    await spectator.send_json_to({"type": "resume", "seq": 1})
    snapshot = await receive(spectator)
    assert (snapshot["type"], snapshot["frame"]) == ("snapshot", 3)
    await spectator.disconnect()


async def test_an_open_socket_does_not_keep_its_own_copy_of_the_course():
    """Memory per spectator: 1,000 sockets each holding the course made a web process of
    the design load 1.1 GiB and its garbage collections 0.2-1.3 s long."""
    live = await Live.start()
    first = await connect(f"/ws/races/{live.race.slug}/")
    await receive(first)  # the hub and its snapshot: once per process, not per socket
    points = await sync_to_async(lambda: live.race.course.points)()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        course_copy = json.loads(json.dumps(points))
        one_course = tracemalloc.get_traced_memory()[0] - before
        del course_copy
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        sockets = [await connect(f"/ws/races/{live.race.slug}/") for _ in range(8)]
        for spectator in sockets:
            assert (await receive(spectator))["type"] == "snapshot"
        gc.collect()
        per_socket = (tracemalloc.get_traced_memory()[0] - before) / len(sockets)
    finally:
        tracemalloc.stop()
    assert one_course > 50_000  # a real course: hundreds of points
    assert per_socket < one_course / 2, (per_socket, one_course)  # about 23 KB to 97 KB
    for spectator in [first, *sockets]:
        await spectator.disconnect()


async def test_ping_is_answered_with_pong():
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    await receive(spectator)
    await spectator.send_json_to({"type": "ping"})
    assert await receive(spectator) == {"type": "pong"}
    await spectator.disconnect()


async def test_race_status_changes_reach_spectators():
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    await receive(spectator)
    await live.frame()
    await receive(spectator)
    await live.core.race_ended(live.race.slug, "finished")
    message = await receive(spectator)
    assert (message["type"], message["status"], message["slug"]) == (
        "race",
        "finished",
        live.race.slug,
    )
    await spectator.disconnect()


async def test_a_spectator_waiting_before_the_start_is_told_when_it_starts():
    race = await sync_to_async(make_race)(unique_name(), athletes=2)
    spectator = await connect(f"/ws/races/{race.slug}/")
    snapshot = await receive(spectator)
    assert (snapshot["race"]["status"], snapshot["race"]["started_at"]) == ("draft", None)
    race = await sync_to_async(lifecycle.start_race)(race)
    core = RelayCore(frames_per_second=20)
    await core.race_started(race.slug)
    started = await receive(spectator)
    assert (started["type"], started["status"]) == ("race", "running")
    assert started["started_at"] == race.started_at.isoformat().replace("+00:00", "Z")
    await spectator.disconnect()


# ---- bad clients --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "send",
    [
        {"text_data": "{not json"},
        {"text_data": "[1, 2, 3]"},
        {"text_data": json.dumps({"type": "teleport"})},
        {"text_data": json.dumps({"type": "resume", "seq": "12"})},
        {"text_data": json.dumps({"type": "ping", "pad": "x" * MAX_CLIENT_MESSAGE})},
        {"bytes_data": b"\x00\x01binary"},
    ],
    ids=["malformed", "not-an-object", "unknown-type", "bad-seq", "oversized", "binary"],
)
async def test_an_unintelligible_message_closes_that_socket_only(send):
    live = await Live.start()
    bad = await connect(f"/ws/races/{live.race.slug}/")
    good = await connect(f"/ws/races/{live.race.slug}/")
    await receive(bad)
    await receive(good)
    await bad.send_to(**send)
    assert await closed_with(bad) == 4400
    await live.frame()
    assert (await receive(good))["frame"] == 1
    await good.disconnect()


async def test_unknown_race_closes_with_4404():
    spectator = await connect("/ws/races/no-such-race/")
    assert await closed_with(spectator) == 4404


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ([], True),  # non-browser clients send no Origin
        ([(b"origin", b"http://testserver"), (b"host", b"testserver")], True),
        ([(b"origin", b"http://localhost:8000"), (b"host", b"elsewhere")], True),
        ([(b"origin", b"https://evil.example"), (b"host", b"localhost:8000")], False),
        ([(b"origin", b"null"), (b"host", b"localhost:8000")], False),
    ],
    ids=["no-origin", "same-host", "allowed-host", "foreign", "null"],
)
async def test_browser_origins_are_checked(headers, allowed):
    live = await Live.start()
    communicator = WebsocketCommunicator(
        application, f"/ws/races/{live.race.slug}/", headers=headers
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected is allowed
    await communicator.disconnect()


async def test_ws_allowed_origins_lets_a_listed_origin_in(settings):
    settings.WS_ALLOWED_ORIGINS = ["https://partner.example"]
    live = await Live.start()
    headers = [(b"origin", b"https://partner.example"), (b"host", b"localhost:8000")]
    communicator = await connect(f"/ws/races/{live.race.slug}/", headers=headers)
    await communicator.disconnect()


# ---- race list and the seed-compatible endpoint -------------------------------------------


async def test_race_list_socket_lists_races_and_announces_starts_and_finishes():
    live = await Live.start()
    spectator = await connect("/ws/races/")
    listing = await receive(spectator)
    assert listing["type"] == "races"
    assert live.race.slug in {r["slug"] for r in listing["races"]}
    await live.core.race_started(live.race.slug)
    announced = await receive(spectator)
    assert (announced["type"], announced["slug"], announced["status"]) == (
        "race",
        live.race.slug,
        "running",
    )
    await live.core.race_ended(live.race.slug, "finished")
    assert (await receive(spectator))["status"] == "finished"
    await spectator.disconnect()


async def test_seed_endpoint_sends_each_contract_event_as_one_message():
    live = await Live.start(athletes=3)
    other = await Live.start(athletes=2)
    one = await connect(f"/ws?race={live.race.exchange_name}")
    both = await connect("/ws?race=all")
    await live.frame()
    await other.frame()
    got = [await receive(one) for _ in range(3)]
    assert [e["athlete_id"] for e in got] == [a.pk for a in live.feed.athletes]
    event = got[0]
    assert event["race"] == live.race.exchange_name and event["event"] == "start"
    assert set(event) >= {"athlete", "gender", "race", "location", "elevation", "time", "event"}
    assert set(event["location"]) == {"latitude", "longitude"}
    everything = [await receive(both) for _ in range(5)]
    assert {e["race"] for e in everything} == {live.race.exchange_name, other.race.exchange_name}
    assert await one.receive_nothing(timeout=0.2)
    await one.disconnect()
    await both.disconnect()


async def test_seed_endpoint_refuses_an_unknown_race():
    spectator = await connect("/ws?race=race-no-such-race")
    assert await closed_with(spectator) == 4404
