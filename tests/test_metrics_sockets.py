"""Spectator metrics move as a scraper would see them: connections, frames and positions
sent, refused and failed sockets, the seed endpoint. Drives the real WebSocket endpoints
(WebsocketCommunicator) and a relay core on the in-memory layer, and reads the web's
/metrics through its ASGI application.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from harness.waiting import async_wait_until
from races import wire
from races.models import Position, Race
from races.relay.core import RelayCore
from races.spectators import hub as hubs
from races.spectators import race_hub
from races.spectators.routing import websocket_urlpatterns
from tests.factories import EventFeed, started_race
from tests.metrics_support import (
    assert_promtool_accepts,
    moved,
    scrape_web,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


sockets = URLRouter(websocket_urlpatterns)


class LiveRace:
    """A started race, its contract events, and a relay core making frames on demand."""

    def __init__(self, race: Race, feed: EventFeed) -> None:
        self.race, self.feed = race, feed
        self.slug = race.slug
        self.core = RelayCore(frames_per_second=20)
        self.second = 0

    @classmethod
    async def start(cls, athletes: int = 4) -> "LiveRace":
        # 1000x: a tick 30 race-seconds after the start was due 30 ms after it.
        race = await sync_to_async(started_race)(athletes=athletes, time_compression=1000.0)
        return cls(race, await sync_to_async(EventFeed)(race))

    async def frame(self, events: list[dict] | None = None) -> list[dict]:
        if events is None:
            self.second += 30
            events = self.feed.starts() if self.second == 30 else self.feed.tick(self.second)
        self.core.ingest(self.slug, events)
        await self.core.flush(self.core.feeds[self.slug])
        return events


async def connect(path: str, **kwargs) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(sockets, path, **kwargs)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def receive(communicator: WebsocketCommunicator) -> dict:
    return json.loads(await communicator.receive_from(timeout=5))


async def until(condition, what: str, within_s: float = 10.0):
    return await async_wait_until(condition, within_s, what)


# ---- spectators -------------------------------------------------------------------------


async def test_a_spectator_moves_the_connection_gauge_and_a_running_race_the_sent_counters():
    live = await LiveRace.start(athletes=4)
    before = await scrape_web()
    spectator = await connect(f"/ws/races/{live.slug}/")
    assert (await receive(spectator))["type"] == "snapshot"

    connected = await scrape_web()
    assert moved(before, connected, "raceweb_websocket_connections", endpoint="race") == 1
    assert moved(before, connected, "raceweb_websocket_connects_total", endpoint="race") == 1
    assert moved(before, connected, "raceweb_snapshot_size_bytes_count") == 1
    assert moved(before, connected, "raceweb_snapshot_size_bytes_sum") > 100
    assert moved(before, connected, "raceweb_frames_sent_total", endpoint="race") == 1

    positions_on_the_wire = positions_in = 0
    for _ in range(3):
        positions_in += len(await live.frame())
        update = await receive(spectator)
        assert update["type"] == "update"
        positions_on_the_wire += len(update["athletes"])
    running = await scrape_web()
    assert moved(connected, running, "raceweb_frames_sent_total", endpoint="race") == 3
    assert (
        moved(connected, running, "raceweb_positions_sent_total", endpoint="race")
        == positions_on_the_wire
    )
    latency = {"race": live.slug}
    # Every position of the three frames was timed, from its due time to the frame going out.
    assert running("raceweb_position_delivery_seconds_count", **latency) == positions_in == 12
    assert 0 < running("raceweb_position_delivery_seconds_sum", **latency) < 12 * 10
    assert running("raceweb_position_delivery_seconds_bucket", le="+Inf", **latency) == 12
    # The relay core in this process counted the same positions.
    assert running("raceweb_relay_positions_consumed_total", **latency) == 12
    assert running("raceweb_relay_positions_stored_total", **latency) == 12
    assert running("raceweb_relay_lag_seconds", **latency) > 0
    assert_promtool_accepts(running)

    await spectator.disconnect()

    async def gauge_back() -> bool:
        after = await scrape_web()
        return after("raceweb_websocket_connections", endpoint="race") == before(
            "raceweb_websocket_connections", endpoint="race"
        )

    await until(gauge_back, "the connection gauge to drop after the disconnect")
    left = await scrape_web()
    assert moved(before, left, "raceweb_websocket_disconnects_total", endpoint="race") == 1


async def test_duplicates_are_counted_not_stored():
    live = await LiveRace.start(athletes=4)
    starts = await live.frame()
    await live.frame(starts)  # the same events again, as after a relay crash
    scrape = await scrape_web()
    race = {"race": live.slug}
    assert scrape("raceweb_relay_positions_consumed_total", **race) == 8
    assert scrape("raceweb_relay_positions_deduplicated_total", **race) == 4
    assert scrape("raceweb_relay_positions_stored_total", **race) == 4
    assert await sync_to_async(Position.objects.filter(race=live.race).count)() == 4


async def test_refused_and_failed_sockets_count_as_errors_by_reason():
    live = await LiveRace.start(athletes=2)
    before = await scrape_web()

    unknown = await connect("/ws/races/no-such-race/")
    assert (await unknown.receive_output(timeout=5))["code"] == 4404
    garbage = await connect(f"/ws/races/{live.slug}/")
    await receive(garbage)
    await garbage.send_to(text_data="{not json")
    assert (await garbage.receive_output(timeout=5))["code"] == 4400
    foreign = WebsocketCommunicator(
        sockets, f"/ws/races/{live.slug}/", headers=[(b"origin", b"https://evil.example")]
    )
    assert (await foreign.connect(timeout=5))[0] is False

    after = await scrape_web()

    def errors(reason: str) -> float:
        return moved(
            before, after, "raceweb_websocket_errors_total", endpoint="race", reason=reason
        )

    assert (errors("unknown_race"), errors("bad_message"), errors("origin")) == (1, 1, 1)
    # The refused origin never counted as a connection; the other two did, and closed.
    assert moved(before, after, "raceweb_websocket_connects_total", endpoint="race") == 2
    assert moved(before, after, "raceweb_websocket_disconnects_total", endpoint="race") == 2
    assert moved(before, after, "raceweb_websocket_connections", endpoint="race") == 0


async def test_an_unexpected_server_error_counts_as_other(monkeypatch):
    async def broken(slug: str):
        raise RuntimeError("the database went away mid-handshake")

    monkeypatch.setattr(race_hub, "race_hub", broken)
    race = await sync_to_async(started_race)(athletes=1)  # admitted, then the hub fails
    before = await scrape_web()
    socket = await connect(f"/ws/races/{race.slug}/")
    with pytest.raises(RuntimeError, match="database went away"):
        await socket.receive_output(timeout=5)
    after = await scrape_web()
    labels = {"endpoint": "race", "reason": "other"}
    assert moved(before, after, "raceweb_websocket_errors_total", **labels) == 1
    assert moved(before, after, "raceweb_websocket_connections", endpoint="race") == 0


async def test_seed_endpoint_counts_one_position_per_message():
    live = await LiveRace.start(athletes=3)
    before = await scrape_web()
    listener = await connect(f"/ws?race={wire.exchange_name(live.slug)}")
    # Accepted first, subscribed after: events before that are not this listener's.
    seed_hub = await hubs.seed_hub()
    await until(lambda: seed_hub.spectators, "the listener to join the seed hub")
    events = await live.frame()
    for _ in events:
        await receive(listener)
    after = await scrape_web()
    assert moved(before, after, "raceweb_websocket_connections", endpoint="seed") == 1
    assert moved(before, after, "raceweb_frames_sent_total", endpoint="seed") == len(events)
    assert moved(before, after, "raceweb_positions_sent_total", endpoint="seed") == len(events)
    await listener.disconnect()
