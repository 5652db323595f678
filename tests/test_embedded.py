"""Embedded mode: the relay core inside the web process, fed by an in-process publisher."""

import asyncio
import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from harness.waiting import async_wait_until
from races import deployment
from races.models import Position
from races.organizer import lifecycle
from races.relay import embedded
from races.simulation import embedded_runner
from races.spectators import hub as hubs
from raceweb.asgi import application
from simulator.publishers import CallbackPublisher
from tests.factories import EventFeed, make_race, unique_name

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_layer():
    embedded.stop()
    channel_layers.backends.clear()
    yield
    embedded.stop()
    channel_layers.backends.clear()


async def test_a_race_published_from_another_thread_reaches_spectators():
    race = await sync_to_async(make_race)(unique_name("Embedded"), athletes=3)
    spectator = WebsocketCommunicator(application, f"/ws/races/{race.slug}/")
    assert (await spectator.connect(timeout=5))[0]  # the middleware starts the relay
    snapshot = json.loads(await spectator.receive_from(timeout=5))
    assert snapshot["frame"] == 0

    race = await sync_to_async(lifecycle.start_race)(race)  # notice -> embedded relay
    feed = await sync_to_async(EventFeed)(race)
    publisher = CallbackPublisher(embedded.publish)  # what the in-process runner uses
    batches = [feed.starts(), *(feed.tick(s) for s in (30, 60, 90))]

    def runner():
        for batch in batches:
            publisher.publish(race.exchange_name, batch)

    thread = threading.Thread(target=runner)
    thread.start()
    await asyncio.to_thread(thread.join)

    frames, athletes, statuses = [], {}, []
    while sum(1 for a in athletes.values() if a.get("distance_m") == 90 * 4.0) < 1:
        update = json.loads(await spectator.receive_from(timeout=5))
        if update["type"] == "race":
            statuses.append(update["status"])
            continue
        frames.append(update["frame"])
        for athlete in update["athletes"]:
            athletes.setdefault(athlete["id"], {}).update(athlete)
    assert frames == list(range(1, len(frames) + 1))
    assert statuses == ["running"]  # the lifecycle's notice reached the embedded relay
    assert {a["status"] for a in athletes.values()} == {"running"}

    async def stored() -> bool:
        return await Position.objects.filter(race=race).acount() == 12

    await async_wait_until(stored, 10, "every position stored")
    await spectator.disconnect()
    await hubs.close_all()


async def test_events_published_before_the_relay_runs_are_kept_until_it_does():
    race = await sync_to_async(make_race)(unique_name("Early"), athletes=2)
    race = await sync_to_async(lifecycle.start_race)(race)
    feed = await sync_to_async(EventFeed)(race)
    embedded.publish(race.exchange_name, feed.starts())  # no event loop has the relay yet
    embedded.start()

    async def stored() -> bool:
        return await Position.objects.filter(race=race).acount() == 2

    await async_wait_until(stored, 10, "the early events stored")


def test_embedded_mode_is_installed_once_and_keeps_everything_in_process():
    assert deployment.current() is deployment.EMBEDDED  # no AMQP_URL in the test settings
    assert isinstance(application, embedded.EmbeddedRelayMiddleware)
    assert lifecycle.on_started == [embedded.notify_relay, embedded_runner.start_simulation]
    assert lifecycle.on_stopped == lifecycle.on_reset == [embedded.notify_relay]
    assert deployment.EMBEDDED.server_ready_callable() is embedded.start_when_loop_runs
    assert not deployment.EMBEDDED.separate_relay
