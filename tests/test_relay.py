"""The relay core on the in-memory layer: events in, stored positions and numbered frames out."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import OperationalError

from races.models import LiveAthlete, LiveRace, Position, Race
from races.organizer import lifecycle
from races.relay import embedded, live_store
from races.relay.core import RelayCore
from races.relay.race_feed import QUIET_S, RaceFeed
from races.wire import SEED_GROUP
from tests.factories import EventFeed, started_race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
    embedded.stop()


async def setup_race(athletes: int = 5):
    race = await sync_to_async(started_race)(athletes=athletes)
    feed = await sync_to_async(EventFeed)(race)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(race.group_name, channel)
    return race, feed, layer, channel


async def next_message(layer, channel) -> dict:
    return await asyncio.wait_for(layer.receive(channel), 5.0)


async def test_each_flush_is_one_frame_numbered_consecutively_with_every_changed_athlete():
    race, feed, layer, channel = await setup_race()
    core = RelayCore(frames_per_second=20)
    held: dict[int, dict] = {}
    for frame, events in enumerate([feed.starts(), feed.tick(30), feed.tick(60)], start=1):
        core.ingest(race.slug, events)
        await core.flush(core.feeds[race.slug])
        message = await next_message(layer, channel)
        assert (message["type"], message["frame"]) == ("race.frame", frame)
        update = json.loads(message["text"])
        assert update["frame"] == frame
        assert sorted(a["id"] for a in update["athletes"]) == sorted(a.pk for a in feed.athletes)
        for athlete in update["athletes"]:
            held.setdefault(athlete["id"], {}).update(athlete)
    assert [held[a.pk]["rank"] for a in feed.athletes] == [1, 2, 3, 4, 5]
    assert [held[a.pk]["distance_m"] for a in feed.athletes] == [
        pytest.approx(60 * feed.speed(i)) for i in range(5)
    ]
    assert update["clock_s"] == 60.0
    # Ranks did not change in the last frame: it carries what moved, not the whole athlete.
    assert all("rank" not in a and "name" not in a for a in update["athletes"])


async def test_positions_and_live_state_are_stored_before_the_ack():
    race, feed, _, _ = await setup_race()
    core = RelayCore(frames_per_second=20)
    seen_at_ack = []

    def count_from_another_connection() -> tuple[int, int]:
        return Position.objects.filter(race=race).count(), LiveRace.objects.get(race=race).frame

    def ack():
        with ThreadPoolExecutor(1) as other_thread:
            seen_at_ack.append(other_thread.submit(count_from_another_connection).result())

    core.ingest(race.slug, feed.starts() + feed.tick(30))
    core.ingest(race.slug, feed.tick(60), ack=ack)
    await core.flush(core.feeds[race.slug])
    assert seen_at_ack == [(15, 1)]
    assert await LiveAthlete.objects.filter(race=race).acount() == 5
    assert await Position.objects.filter(race=race, frame=1).acount() == 15


async def test_duplicates_are_dropped_by_seq_and_bad_events_do_not_stop_the_batch():
    race, feed, layer, channel = await setup_race()
    core = RelayCore(frames_per_second=20)
    starts = feed.starts()
    raw = [json.dumps(e).encode() for e in starts]
    core.ingest(race.slug, raw)
    await core.flush(core.feeds[race.slug])
    await next_message(layer, channel)
    tick = feed.tick(30)
    core.ingest(race.slug, [*raw, b"not json", b"[1, 2]", {**tick[0], "athlete_id": 10**9}])
    core.ingest(race.slug, tick)
    await core.flush(core.feeds[race.slug])
    message = await next_message(layer, channel)
    assert message["frame"] == 2
    assert core.stats.duplicates == 5 and core.stats.invalid == 3
    assert await Position.objects.filter(race=race).acount() == 10


async def test_an_overtaken_redelivery_is_stored_once_without_moving_the_athlete_back():
    """Deliveries redelivered after a crash can arrive after newer ones: an older seq that
    was never stored is stored (history), one that was is not stored twice."""
    race, feed, _, _ = await setup_race()
    core = RelayCore(frames_per_second=20)
    starts, early, late = feed.starts(), feed.tick(30), feed.tick(60)
    core.ingest(race.slug, starts + late)
    await core.flush(core.feeds[race.slug])
    core.ingest(race.slug, early)  # overtaken: never stored
    await core.flush(core.feeds[race.slug])
    core.ingest(race.slug, early + starts)  # redelivered again: stored already
    await core.flush(core.feeds[race.slug])
    seqs = [seq async for seq in Position.objects.filter(race=race).values_list("seq", flat=True)]
    assert sorted(seqs) == sorted(e["seq"] for e in starts + early + late)
    assert core.stats.positions_stored == 15 and core.stats.duplicates == 10
    leader = await LiveAthlete.objects.aget(athlete=feed.athletes[0])
    assert leader.state["distance_m"] == pytest.approx(60 * 4.0, abs=0.1)


async def test_raw_events_go_to_the_seed_group_as_they_came():
    race, feed, layer, _ = await setup_race(athletes=2)
    seed = await layer.new_channel()
    await layer.group_add(SEED_GROUP, seed)
    core = RelayCore(frames_per_second=20)
    raw = [json.dumps(e, indent=1).encode() for e in feed.starts()]
    core.ingest(race.slug, raw)
    await core.flush(core.feeds[race.slug])
    message = await next_message(layer, seed)
    assert message["race"] == race.exchange_name
    assert message["events"] == [body.decode() for body in raw]


async def test_a_restarted_relay_carries_on_from_the_stored_frame():
    race, feed, layer, channel = await setup_race()
    first = RelayCore(frames_per_second=20)
    first.ingest(race.slug, feed.starts() + feed.tick(30))
    await first.flush(first.feeds[race.slug])
    redelivered = feed.tick(60)
    second = RelayCore(frames_per_second=20)
    second.ingest(race.slug, redelivered)
    await second.flush(second.feeds[race.slug])
    second.ingest(race.slug, redelivered + feed.tick(90))  # a redelivery after a crash
    await second.flush(second.feeds[race.slug])
    frames = [(await next_message(layer, channel))["frame"] for _ in range(3)]
    assert frames == [1, 2, 3]
    assert second.stats.duplicates == 5
    leader = await LiveAthlete.objects.aget(athlete=feed.athletes[0])
    assert leader.state["distance_m"] == pytest.approx(90 * 4.0, abs=0.1)
    assert leader.state["splits"] == []  # VTR: first checkpoint at 5 km


async def test_the_race_finishes_when_everyone_is_in():
    race, feed, _, _ = await setup_race(athletes=2)
    core = RelayCore(frames_per_second=20)
    length = feed.length_m
    core.ingest(race.slug, feed.starts())
    core.ingest(race.slug, [feed.event(feed.athletes[0], 3000, length, "finish")])
    core.ingest(race.slug, [feed.event(feed.athletes[1], 2000, 900.0, "dnf")])
    await core.flush(core.feeds[race.slug])
    race = await Race.objects.aget(pk=race.pk)
    assert race.status == Race.Status.FINISHED


async def test_a_relay_started_after_the_last_frame_was_stored_finishes_the_race():
    race, feed, _, _ = await setup_race(athletes=2)
    first = RelayCore(frames_per_second=20)
    first.ingest(race.slug, feed.starts())
    first.ingest(race.slug, [feed.event(a, 3000, feed.length_m, "finish") for a in feed.athletes])
    first.feeds[race.slug].finish_requested = True  # it dies before finishing the race
    await first.flush(first.feeds[race.slug])
    assert (await Race.objects.aget(pk=race.pk)).status == Race.Status.RUNNING
    await RelayCore(frames_per_second=20).start()  # the next relay takes the running races on
    assert (await Race.objects.aget(pk=race.pk)).status == Race.Status.FINISHED


async def test_a_frame_of_a_race_reset_meanwhile_is_not_stored():
    race, feed, _, _ = await setup_race()
    core = RelayCore(frames_per_second=20)
    core.ingest(race.slug, feed.starts())
    await core.flush(core.feeds[race.slug])

    def stop_and_reset():
        lifecycle.reset_race(lifecycle.stop_race(Race.objects.get(pk=race.pk)))

    await sync_to_async(stop_and_reset)()
    core.ingest(race.slug, feed.tick(30))
    await core.flush(core.feeds[race.slug])
    assert await Position.objects.filter(race=race).acount() == 0
    assert not await LiveAthlete.objects.filter(race=race).aexists()


def test_a_frame_is_due_when_its_burst_is_over_and_never_more_often_than_the_rate():
    """The frame rule on the race's clock alone: a burst's frame waits for QUIET_S of
    quiet; a trickle that is never quiet waits one interval at most; and a frame never
    follows the previous one by less than an interval."""
    interval = 0.25
    feed = RaceFeed("quiet")
    assert feed.ready_at(interval) == float("inf")  # nothing to send
    feed.add([], None, now=10.0)
    feed.add([], None, now=10.03)  # the burst goes on
    assert feed.ready_at(interval) == pytest.approx(10.03 + QUIET_S)
    trickle = RaceFeed("trickle")
    for step in range(20):  # an event every 20 ms: never QUIET_S without one
        trickle.add([], None, now=20.0 + 0.02 * step)
    assert trickle.ready_at(interval) == pytest.approx(20.0 + interval)
    trickle.last_flush_at = 20.3
    trickle.inbox.clear()
    trickle.add([], None, now=20.31)
    assert trickle.ready_at(interval) == pytest.approx(20.3 + interval)  # the rate cap


def test_a_tick_with_an_event_from_everyone_out_on_the_course_is_due_without_the_quiet():
    """A simulation tick is complete once every athlete still out on the course has sent
    an event: its frame need not wait QUIET_S for more (40 ms of every position's latency).
    """
    interval = 0.25
    feed = RaceFeed("tick")
    feed.expected = 3
    assert feed.add([b'{"athlete_id": 1}', b'{"athlete_id": 2}'], None, now=10.0)
    assert feed.ready_at(interval) == pytest.approx(10.0 + QUIET_S)
    # A second event of an athlete already in (a checkpoint) does not complete the tick.
    assert not feed.add([b'{"athlete_id": 2}', b"not json"], None, now=10.01)
    assert feed.ready_at(interval) == pytest.approx(10.01 + QUIET_S)
    assert feed.add([b'{"athlete_id": 3}'], None, now=10.02)  # the frame loop must look
    assert feed.ready_at(interval) == pytest.approx(10.02)
    feed.last_flush_at = 9.9
    assert feed.ready_at(interval) == pytest.approx(9.9 + interval)  # the rate cap holds
    batch, _ = feed.take_inbox()
    assert len(batch) == 3
    feed.add([b'{"athlete_id": 3}'], None, now=11.0)  # the next tick starts from nobody
    assert feed.ready_at(interval) == pytest.approx(11.0 + QUIET_S)


async def test_the_relay_expects_events_only_from_athletes_still_out_on_the_course():
    race, feed, _, _ = await setup_race(athletes=4)
    core = RelayCore(frames_per_second=20)
    core.ingest(race.slug, feed.starts())
    await core.flush(core.feeds[race.slug])
    assert core.feeds[race.slug].expected == 4
    first, second = feed.athletes[:2]
    core.ingest(race.slug, [
        feed.event(first, 60, feed.length_m, "finish"),
        feed.event(second, 60, 100.0, "dnf"),
    ])  # fmt: skip
    await core.flush(core.feeds[race.slug])
    assert core.feeds[race.slug].expected == 2
    await core.close()


async def test_positions_after_a_quiet_spell_go_out_without_waiting_for_a_frame_clock():
    """A spectator sees a tick as soon as it is in, not up to a frame interval later: the
    relay used to flush at a fixed phase, which made each position wait a random part of
    an interval (spectators' p50 366 to 723 ms at 1 frame/s ticks in the benchmark)."""
    race, feed, layer, channel = await setup_race(athletes=2)
    core = RelayCore(frames_per_second=1)  # an interval of a whole second
    runner = asyncio.create_task(core.run())
    try:
        core.ingest(race.slug, feed.starts())
        assert (await next_message(layer, channel))["frame"] == 1
        await asyncio.sleep(1.2)  # quiet for longer than an interval: no frame is owed
        loop = asyncio.get_running_loop()
        began = loop.time()
        core.ingest(race.slug, feed.tick(1))
        second = await next_message(layer, channel)
        waited = loop.time() - began
        assert second["frame"] == 2
        # A fixed-phase clock would have sent it ~0.8 s later (at 2 s after the first).
        assert waited < 0.5, f"the tick waited {waited:.2f} s for its frame"
    finally:
        core.stop()
        await runner
        await core.close()


async def test_the_frame_loop_sends_at_most_the_configured_rate():
    race, feed, layer, channel = await setup_race(athletes=2)
    core = RelayCore(frames_per_second=10)
    runner = asyncio.create_task(core.run())
    try:
        core.ingest(race.slug, feed.starts())
        for second in range(1, 40):  # far more batches than frames
            core.ingest(race.slug, feed.tick(second))
        first = await next_message(layer, channel)
        assert first["frame"] == 1
        assert len(json.loads(first["text"])["athletes"]) == 2
        loop = asyncio.get_running_loop()
        began = loop.time()
        for second in range(40, 44):
            core.ingest(race.slug, feed.tick(second))
            await next_message(layer, channel)
        assert loop.time() - began >= 3 * 0.1 * 0.9  # four frames need three intervals
    finally:
        core.stop()
        await runner
        await core.close()


def fail_the_next_store(monkeypatch) -> None:
    """The next frame's store raises a database error; the ones after it store."""
    real_store = live_store.store_frame
    failures = [OperationalError("database is locked")]

    def store_frame(*args):
        if failures:
            raise failures.pop()
        return real_store(*args)

    monkeypatch.setattr(live_store, "store_frame", store_frame)


async def test_a_database_error_keeps_the_batch_for_the_next_frame(monkeypatch):
    race, feed, layer, channel = await setup_race(athletes=2)
    core = RelayCore(frames_per_second=20)
    fail_the_next_store(monkeypatch)
    acked = []
    core.ingest(race.slug, feed.starts(), ack=lambda: acked.append(1))
    await core.flush(core.feeds[race.slug])  # fails, keeps the batch, unacked
    assert acked == [] and core.stats.store_failures == 1
    await core.flush(core.feeds[race.slug])
    assert acked == [1]
    assert (await next_message(layer, channel))["frame"] == 1
    assert await Position.objects.filter(race=race).acount() == 2


async def test_events_applied_on_arrival_go_in_one_frame_and_again_after_a_failed_store(
    monkeypatch,
):
    """Once a race's state is loaded, events are applied as they arrive (not when their
    frame is due); a store that fails reloads the state, and the frame applies them again."""
    race, feed, layer, channel = await setup_race(athletes=2)
    core = RelayCore(frames_per_second=20)
    core.ingest(race.slug, feed.starts())
    await core.flush(core.feeds[race.slug])
    assert (await next_message(layer, channel))["frame"] == 1
    tick = feed.tick(30)
    core.ingest(race.slug, tick)
    core.ingest(race.slug, tick)  # redelivered: duplicates
    arrived = core.feeds[race.slug].applied
    assert (arrived.batches, len(arrived.fixes), arrived.duplicates) == (2, 2, 2)
    fail_the_next_store(monkeypatch)
    await core.flush(core.feeds[race.slug])  # fails: the state is reloaded
    core.ingest(race.slug, feed.tick(60))  # not applied on arrival: no state loaded
    await core.flush(core.feeds[race.slug])
    update = json.loads((await next_message(layer, channel))["text"])
    assert update["frame"] == 2
    assert sorted(a["distance_m"] for a in update["athletes"]) == pytest.approx(
        sorted(60 * feed.speed(i) for i in range(2))
    )
    assert await Position.objects.filter(race=race).acount() == 6  # 2 starts, 2 ticks of 2
    await core.close()


async def test_a_standby_that_becomes_active_again_carries_on_from_what_the_other_stored():
    race, feed, layer, channel = await setup_race()
    one, other = RelayCore(frames_per_second=20), RelayCore(frames_per_second=20)
    one.ingest(race.slug, feed.starts())
    await one.flush(one.feeds[race.slug])  # frame 1 by the first relay
    for second in (30, 60):  # the first relay is gone; the other writes frames 2 and 3
        other.ingest(race.slug, feed.tick(second))
        await other.flush(other.feeds[race.slug])
    one.ingest(race.slug, feed.tick(90))  # the first relay is active again
    await one.flush(one.feeds[race.slug])  # sees frame 3 stored, reloads: no frame yet
    await one.flush(one.feeds[race.slug])
    frames = [(await next_message(layer, channel))["frame"] for _ in range(4)]
    assert frames == [1, 2, 3, 4]
    leader = await LiveAthlete.objects.aget(athlete=feed.athletes[0])
    assert leader.state["distance_m"] == pytest.approx(90 * 4.0)
    assert await Position.objects.filter(race=race).acount() == 20


async def test_a_running_race_rewrites_its_live_rows_in_place_on_postgresql():
    """Every live row is rewritten once a frame; on PostgreSQL the rewrite must stay in its
    page (a HOT update), or the table grows by a row version per athlete per frame until
    autovacuum comes (measured: 130 MB for 6,000 live rows after an hour of frames)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("page-level row versions are PostgreSQL's (SQLite rewrites in place)")
    athletes = 300  # more than bulk_sql.SMALL_BATCH: the COPY path of a big race
    race, feed, _, _ = await setup_race(athletes)
    core = RelayCore(frames_per_second=20)

    @sync_to_async
    def table_pages() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size('races_liveathlete') / 8192")
            return cursor.fetchone()[0]

    for second in range(0, 62, 2):
        core.ingest(race.slug, feed.starts() if second == 0 else feed.tick(second))
        await core.flush(core.feeds[race.slug])
        if second == 2:
            after_first_update = await table_pages()
    await core.close()
    assert await sync_to_async(LiveAthlete.objects.filter(race=race).count)() == athletes
    grown = await table_pages() - after_first_update
    # 29 more rewrites of 300 rows in full pages: 619 pages more (measured).
    assert grown <= 5, f"the live table grew by {grown} pages in 29 frames"
