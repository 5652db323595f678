"""A race hub that missed something catches up: a gap in frame numbers, a lost last frame,
a lost status notice (races.spectators.race_hub), on the in-memory layer."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from harness.waiting import async_wait_until
from races.organizer import lifecycle
from races.spectators import race_hub, snapshots
from tests.test_consumers import Live, connect, receive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


@contextmanager
def lost_on_the_way(live: Live) -> Iterator[None]:
    """Frames stored by the relay but never reaching the web (as in a broker restart)."""
    layer = live.core.layer
    send = layer.group_send

    async def lose(group, message):
        return None

    layer.group_send = lose
    try:
        yield
    finally:
        layer.group_send = send


async def test_a_lost_frame_makes_the_hub_send_a_fresh_snapshot():
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    await receive(spectator)
    await live.frame()
    await receive(spectator)
    with lost_on_the_way(live):
        await live.frame()
    await live.frame()
    snapshot = await receive(spectator)
    assert (snapshot["type"], snapshot["frame"]) == ("snapshot", 3)
    assert all(a["status"] == "running" for a in snapshot["athletes"])
    await live.frame()
    assert (await receive(spectator))["frame"] == 4
    await spectator.disconnect()


async def test_a_lost_last_frame_reaches_spectators_without_a_later_frame(monkeypatch):
    """The last frame before a pause has no successor to reveal its loss: the quiet hub
    asks the database and sends what it missed."""
    monkeypatch.setattr(race_hub, "QUIET_RECHECK_S", 0.2)
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    await receive(spectator)
    await live.frame()
    assert (await receive(spectator))["frame"] == 1
    with lost_on_the_way(live):
        await live.frame()  # stored, never sent; and no frame comes after it
    snapshot = await receive(spectator)
    assert (snapshot["type"], snapshot["frame"]) == ("snapshot", 2)
    assert {a["distance_m"] for a in snapshot["athletes"]} == {
        a["distance_m"] for a in live.feed.tick(live.second)
    }
    await live.frame()
    assert (await receive(spectator))["frame"] == 3
    await spectator.disconnect()


async def test_a_frame_still_on_its_way_is_not_taken_for_a_lost_one(monkeypatch):
    """Stored and sent, but slow to arrive: the quiet hub sees the stored frame ahead of it,
    waits for what is on its way, and sends no needless snapshot."""
    monkeypatch.setattr(race_hub, "QUIET_RECHECK_S", 0.2)
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    await receive(spectator)
    await live.frame()
    assert (await receive(spectator))["frame"] == 1
    hub = await race_hub.race_hub(live.race.slug)
    looks = []  # the hub's looks at the database
    stored_progress = snapshots.stored_progress
    monkeypatch.setattr(
        snapshots, "stored_progress", lambda s: looks.append(s) or stored_progress(s)
    )
    layer = live.core.layer
    send = layer.group_send

    async def slow(group, message):  # arrives after the hub saw it stored
        looked = len(looks)
        await async_wait_until(lambda: len(looks) > looked, 5, "the hub to look")
        await send(group, message)

    layer.group_send = slow
    await live.frame()
    layer.group_send = send
    update = await receive(spectator)
    assert (update["type"], update["frame"]) == ("update", 2)
    assert await spectator.receive_nothing(timeout=race_hub.IN_FLIGHT_GRACE_S + 0.5)
    assert hub.resyncs == 0
    await spectator.disconnect()


async def test_a_lost_finish_notice_reaches_spectators(monkeypatch):
    monkeypatch.setattr(race_hub, "QUIET_RECHECK_S", 0.2)
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    assert (await receive(spectator))["race"]["status"] == "running"
    await sync_to_async(lifecycle.stop_race)(live.race)  # the relay's notice never comes
    snapshot = await receive(spectator)
    assert (snapshot["type"], snapshot["race"]["status"]) == ("snapshot", "stopped")
    await spectator.disconnect()


async def test_a_look_that_fails_is_tried_again_after_the_next_quiet_spell(monkeypatch):
    monkeypatch.setattr(race_hub, "QUIET_RECHECK_S", 0.2)
    live = await Live.start()
    spectator = await connect(f"/ws/races/{live.race.slug}/")
    await receive(spectator)
    stored_progress, failures = snapshots.stored_progress, []

    def database_away(slug):
        failures.append(slug)
        raise OperationalError("the database is away")

    monkeypatch.setattr(snapshots, "stored_progress", database_away)
    with lost_on_the_way(live):
        await live.frame()  # frame 1 stored, never sent
    await async_wait_until(lambda: len(failures) >= 2, 5, "two looks that failed")
    monkeypatch.setattr(snapshots, "stored_progress", stored_progress)  # the database is back
    snapshot = await receive(spectator)
    assert (snapshot["type"], snapshot["frame"]) == ("snapshot", 1)
    await spectator.disconnect()
