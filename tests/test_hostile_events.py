"""Hostile and broken messages on a race's fanout: the relay refuses each one, keeps every
good event of the same batch, and keeps running."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers

from harness.waiting import async_wait_until
from races.models import Position
from races.relay import embedded, live_store
from races.relay.core import RelayCore
from tests.factories import EventFeed, started_race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
    embedded.stop()


def spoiled(**fields) -> dict:
    return fields


# What anyone with publish rights on the fanout could send. Each entry is either raw
# bytes, or fields that replace those of a good event.
POISON = {
    "not-utf8": b"\xff\xfe\x00not utf-8",
    "empty": b"",
    "json-null": b"null",
    "json-string": b'"a string"',
    "json-huge-number": b"1e999",
    "deep-nesting": b"[" * 100_000,
    "nan-literals": b'{"seq": NaN, "athlete_id": Infinity}',
    "seq-string": spoiled(seq="12"),
    "seq-huge": spoiled(seq=2**80),
    "seq-negative": spoiled(seq=-5),
    "seq-null": spoiled(seq=None),
    "seq-float": spoiled(seq=1e300),
    "athlete-list": spoiled(athlete_id=[1]),
    "athlete-object": spoiled(athlete_id={"id": 1}),
    "no-athlete": spoiled(bib=None, athlete_id=None, athlete=None),
    "location-null": spoiled(location=None),
    "location-list": spoiled(location=[1, 2]),
    "latitude-text": spoiled(location={"latitude": "x", "longitude": 1}),
    "latitude-out-of-range": spoiled(location={"latitude": 1e308, "longitude": -1e308}),
    "time-text": spoiled(time="yesterday"),
    "time-number": spoiled(time=12),
    "time-naive": spoiled(time="2026-05-01T09:00:05"),
    "event-list": spoiled(event=["start"]),
    "distance-text": spoiled(distance_m="far"),
    "distance-nan": spoiled(distance_m=float("nan")),
    "elevation-text": spoiled(elevation="high"),
    "elevation-infinite": spoiled(elevation=float("inf")),
    "speed-object": spoiled(speed_mps={"v": 1}),
}


def encode(bad, good: dict) -> bytes:
    if isinstance(bad, bytes):
        return bad
    return json.dumps({**good, **bad}).encode()


@pytest.mark.parametrize("name", list(POISON))
async def test_a_poison_message_is_refused_and_the_good_events_around_it_stored(name):
    race = await sync_to_async(started_race)(athletes=2)
    feed = await sync_to_async(EventFeed)(race)
    core = RelayCore(frames_per_second=20)
    core.ingest(race.slug, [json.dumps(e).encode() for e in feed.starts()])
    await core.flush(core.feeds[race.slug])
    first, second = feed.tick(30)
    bad = encode(POISON[name], {**first, "seq": feed.seq + 100})
    core.ingest(race.slug, [json.dumps(first).encode(), bad, json.dumps(second).encode()])
    await core.flush(core.feeds[race.slug])
    assert core.stats.invalid + core.stats.duplicates == 1
    stored = await sync_to_async(list)(
        Position.objects.filter(race=race).order_by("seq").values_list("seq", flat=True)
    )
    assert stored == [1, 2, first["seq"], second["seq"]]
    assert core.stats.per_race_frame[race.slug] == 2


async def test_an_unexpected_failure_in_one_race_does_not_stop_the_frames_of_others(
    monkeypatch,
):
    broken, healthy = [await sync_to_async(started_race)(athletes=2) for _ in range(2)]
    feeds = {race.slug: await sync_to_async(EventFeed)(race) for race in (broken, healthy)}
    real_store = live_store.store_frame

    def store_frame(race_id, *args):
        if race_id == broken.pk:  # e.g. a driver error that is not a DatabaseError
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real_store(race_id, *args)

    monkeypatch.setattr(live_store, "store_frame", store_frame)
    core = RelayCore(frames_per_second=20)
    running = asyncio.create_task(core.run())
    try:
        for frame, second in enumerate((0, 30, 60), start=1):
            for race in (broken, healthy):
                feed = feeds[race.slug]
                core.ingest(race.slug, feed.starts() if second == 0 else feed.tick(second))
            await async_wait_until(
                lambda frame=frame: core.stats.per_race_frame.get(healthy.slug, 0) >= frame,
                5,
                f"frame {frame} of the healthy race",
            )
        assert not running.done()
        assert core.stats.store_failures >= 3
    finally:
        core.stop()
        await running
