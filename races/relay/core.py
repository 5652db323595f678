"""The relay core: contract events in; stored positions and numbered spectator frames out.

Feeding it — the ingest API, one for every source:

    core.ingest(slug, events, ack=None)             # in the core's event loop
    core.ingest_threadsafe(slug, events, ack=None)  # from any other thread

`events` are contract events (DESIGN.md) as dicts, or as the raw JSON bytes/str they came
in as. `ack`, if given, is called in the event loop once every event of that call is
stored (the AMQP intake passes "ack up to this delivery"; the embedded runner passes
nothing). Sources: `races.relay.amqp_intake.AmqpIntake` (the `manage.py relay` process) and
`races.relay.embedded.publish` (the in-process simulation of embedded mode).

Per race, whatever arrived becomes one frame, at most FRAMES_PER_SECOND times a second and
as soon as a burst has settled (`races.relay.race_feed.RaceFeed.ready_at`): it is applied to
the race's `RaceState`, stored in one transaction (positions, athlete states, frame number;
see `races.relay.live_store`), acked, and only then sent as ONE numbered `update` frame to
the group `race.<slug>`; the raw events go to `seed.all` for the seed-compatible sockets.
Layer calls are shielded from cancellation and bounded by a timeout
(`races.relay.layer_sends`): a frame that cannot be sent is lost for spectators, who see
the gap in frame numbers and get a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from races import wire, wire_decisions, wire_v2
from races.operations import metrics
from races.relay import alert_feed, live_store, race_records
from races.relay.events import Event
from races.relay.frame_events import AppliedEvents, applied_to
from races.relay.layer_sends import GroupSender
from races.relay.race_feed import Ack, Batch, RaceFeed
from races.relay.relay_stats import RelayStats

logger = logging.getLogger(__name__)

# After Finish/Stop, events still in flight get this long to arrive before the last frame.
RELEASE_GRACE_S = 1.0
SEED_EVENTS_PER_MESSAGE = 2000


class StoredFrame(NamedTuple):
    """A frame stored and ready to send."""

    frame: int
    text: str  # the v1 update
    compact: bytes | None  # the same in `raceweb.v2`, encoded once here for every web process
    raw: list[str]  # its events as they came, for the seed-compatible sockets
    due: list  # when its positions were due (the web's delivery latency)


class EventSource(Protocol):
    """Where events come from, as far as the core must steer it (start/stop consuming)."""

    def consume(self, slug: str) -> None: ...

    def cancel(self, slug: str, *, delete_queue: bool) -> None: ...


class RelayCore:
    def __init__(
        self,
        layer: Any = None,
        *,
        frames_per_second: float | None = None,
        source: EventSource | None = None,
    ) -> None:
        if layer is None:
            from channels.layers import get_channel_layer

            layer = get_channel_layer()
        self.layer = layer
        self.interval = 1.0 / (frames_per_second or settings.FRAMES_PER_SECOND)
        self.source = source
        self.feeds: dict[str, RaceFeed] = {}
        self.stats = RelayStats()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-db")
        self._sender = GroupSender(layer, self.stats)
        self._send = self._sender.send
        self._background: set[asyncio.Future] = set()
        self._stopping = False
        self._woken = asyncio.Event()  # an inbox got its first event

    # ---- input ---------------------------------------------------------------------

    def ingest(self, slug: str, events: Sequence[Event], ack: Ack | None = None) -> None:
        """Queue events of race `slug` for the next frame (call in the event loop)."""
        feed = self.feeds.get(slug)
        if feed is None:
            feed = self.feeds[slug] = RaceFeed(slug)
        if feed.add(events, ack, time.monotonic()):
            self._woken.set()
        self.stats.events_in += len(events)
        metrics.relay_consumed(slug, len(events))
        try:
            feed.apply_arrived(self.stats)
        except Exception:  # the frame applies them again, and reports what fails there
            logger.exception("race %s: events not applied on arrival", slug)
            feed.applied = AppliedEvents()

    def spawn(self, coroutine: Any) -> asyncio.Task:
        """Run `coroutine` in the background, keeping a reference until it is done."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def ingest_threadsafe(self, slug: str, events: Sequence[Event], ack: Ack | None = None):
        assert self.loop is not None, "start the core (run()) before feeding it from threads"
        self.loop.call_soon_threadsafe(self.ingest, slug, events, ack)

    # ---- lifecycle of races ----------------------------------------------------------

    async def start(self) -> None:
        """Take on every race that is running now (a relay (re)start)."""
        for slug in await self._in_db(race_records.running_race_slugs):
            await self.race_started(slug)

    async def on_control(self, notice: dict) -> None:
        """A race changed status (a notice from races.relay.broker.notify_relay)."""
        slug, status = notice.get("slug"), notice.get("status")
        if not isinstance(slug, str):
            logger.warning("control notice without a slug: %r", notice)
            return
        if wire_decisions.is_decision(notice):
            # Race control's decision: applied with the race's next frame, whatever its
            # status (results are corrected after the finish too); see RaceState.
            self.ingest(slug, [notice])
            return
        if status == "running":
            await self.race_started(slug)
        elif status in ("finished", "stopped"):
            await self.race_ended(slug, status)
        elif status == "draft":
            await self.race_reset(slug)

    async def race_started(self, slug: str) -> None:
        summary = await self._in_db(race_records.race_summary, slug)
        if summary is None:
            # Another deployment (or test run) on the same broker: not ours to consume.
            logger.info("control notice for race %r, which is not in this database", slug)
            return
        feed = self.feeds.setdefault(slug, RaceFeed(slug))
        if self.source is not None:
            self.source.consume(slug)
        await self._announce(slug, "running", summary)
        async with feed.lock:  # a relay stopped between storing the last frame and finishing
            loaded = feed.loaded or await self._in_db(live_store.load_race, slug)
            await self._finish_if_everyone_done(feed, loaded)

    async def race_ended(self, slug: str, status: str) -> None:
        await asyncio.sleep(RELEASE_GRACE_S)
        feed = self.feeds.get(slug)
        if feed is not None:
            await self.flush(feed)
            self.feeds.pop(slug, None)
        if self.source is not None:
            self.source.cancel(slug, delete_queue=True)
        await self._announce(slug, status)
        metrics.forget_race(slug)

    async def race_reset(self, slug: str) -> None:
        feed = self.feeds.pop(slug, None)
        if feed is not None:
            async with feed.lock:
                _ack_all(feed.take_inbox())
        if self.source is not None:
            self.source.cancel(slug, delete_queue=True)
        await self._send(wire.race_group(slug), {"type": "race.reset"})
        await self._announce(slug, "draft")
        metrics.forget_race(slug)

    # ---- the frame loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Flush each race when its inbox is due (`RaceFeed.ready_at`), until `stop()`."""
        self.loop = asyncio.get_running_loop()
        while not self._stopping:
            began = time.monotonic()
            busy = [f for f in self.feeds.values() if f.ready_at(self.interval) <= began]
            if busy:
                results = await asyncio.gather(
                    *(self.flush(feed) for feed in busy), return_exceptions=True
                )
                # One race's unexpected failure must not stop the frames of every race.
                for feed, result in zip(busy, results, strict=True):
                    if isinstance(result, Exception):
                        self.stats.store_failures += 1
                        logger.error("race %s: frame failed", feed.slug, exc_info=result)
            await self._check_alerts()
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Sleep until the next inbox is due, a first event arrives, or one interval (the
        alerts and `stop()` are looked at once per interval)."""
        now = time.monotonic()
        dues = [feed.ready_at(self.interval) - now for feed in self.feeds.values()]
        timeout = min([self.interval, *dues])
        if timeout <= 0:
            await asyncio.sleep(0)  # let the intake and the sends run between frames
            return
        self._woken.clear()
        try:
            await asyncio.wait_for(self._woken.wait(), timeout)
        except TimeoutError:
            pass

    def stop(self) -> None:
        self._stopping = True

    async def close(self) -> None:
        """Flush what is left, wait for sends in flight, release the DB thread."""
        self.stop()
        for feed in list(self.feeds.values()):
            await self.flush(feed)
        await self._sender.drain()
        await self._in_db(close_old_connections)
        self._db.shutdown(wait=False)

    async def flush(self, feed: RaceFeed) -> None:
        """Apply, store, ack and send everything in the feed's inbox: one frame."""
        async with feed.lock:
            if not feed.inbox:
                return
            batch, applied = feed.take_inbox()
            feed.last_flush_at = time.monotonic()
            try:
                if feed.loaded is None:
                    feed.loaded = await self._in_db(live_store.load_race, feed.slug)
                    logger.info("relay active for %s from frame %s", feed.slug, feed.loaded.frame)
                frame = await self._apply_and_store(feed, batch, applied)
            except live_store.StaleFrame as stale:
                # Another relay wrote this race meanwhile (we were its hot standby), or it
                # was reset: carry on from what is stored, with this batch again.
                logger.info("race %s: %s; reloading", feed.slug, stale)
                feed.loaded = None
                feed.put_back(batch)
                return
            except (live_store.UnknownRace, live_store.RaceNotLive) as error:
                logger.warning("events for race %r dropped: %r", feed.slug, error)
                _ack_all(batch)
                self.feeds.pop(feed.slug, None)
                return
            except DatabaseError:
                logger.exception("storing a frame of %s failed; will retry", feed.slug)
                self.stats.store_failures += 1
                metrics.RELAY_STORE_FAILURES.inc()
                feed.loaded = None  # rebuild from what is stored; re-apply this batch
                feed.put_back(batch)
                await self._in_db(_close_db_connection)
                return
            _ack_all(batch)
            feed.expected = feed.loaded.state.out_on_course()
            if frame is not None:
                await self._send_frame(feed, frame)
            await self._finish_if_everyone_done(feed, feed.loaded)

    async def _finish_if_everyone_done(self, feed: RaceFeed, loaded: live_store.LoadedRace):
        """Only the relay finishes a race: it alone knows every athlete's last event is in."""
        if loaded.state.everyone_done and not feed.finish_requested:
            feed.finish_requested = True
            await self._in_db(race_records.finish_race, loaded.race_id)

    async def _apply_and_store(
        self, feed: RaceFeed, batch: list, applied: AppliedEvents
    ) -> StoredFrame | None:
        loaded = feed.loaded
        state = loaded.state
        began = time.perf_counter()
        applied = applied_to(applied, state, feed.slug, loaded.tracker, batch, self.stats)
        fixes, raw = applied.fixes, applied.raw
        if applied.duplicates:
            metrics.relay_deduplicated(feed.slug, applied.duplicates)
        changes = state.take_changes()
        if not fixes and not changes.full:
            return None
        frame = loaded.frame + 1
        clock_s = state.clock_s
        applied_at = time.perf_counter()
        storing = self._start_in_db(
            _timed_store,
            loaded.race_id,
            frame,
            clock_s,
            fixes,
            changes.full,
            {a["id"]: state.athlete(a["id"]).last_seq for a in changes.full},
        )
        # Both encodings, and race control's watch, while the database thread stores (run
        # after the send, the watch competed with the web processes writing the frame to
        # their sockets: 15-90 ms wall-clock under the design load, probed 2026-12-01).
        update = wire.update_message(frame, clock_s, changes.wire)
        text = wire.dumps(update)
        compact = _compact(feed.slug, changes.previous, update)
        if feed.alerts is not None:
            feed.alerts.watch.observe(changes.full)
        written = await storing
        loaded.frame = frame
        if written < len(fixes):  # older positions that had been stored before
            self.stats.duplicates += len(fixes) - written
            metrics.relay_deduplicated(feed.slug, len(fixes) - written)
        logger.debug(
            "race %s frame %s: %s positions, %s athletes; apply %.1f ms, encode+store %.1f ms",
            feed.slug, frame, len(fixes), len(changes.full),
            1000 * (applied_at - began), 1000 * (time.perf_counter() - applied_at),
        )  # fmt: skip
        self.stats.positions_stored += written
        metrics.relay_stored(feed.slug, written)
        started = state.start_time.timestamp() if state.start_time else None
        due = metrics.due_counts(
            (fix.time.timestamp() for fix in fixes), started, loaded.time_compression
        )
        if due:
            metrics.relay_lag(feed.slug, due[-1][0])
        return StoredFrame(frame, text, compact, raw, due)

    async def _send_frame(self, feed: RaceFeed, stored: StoredFrame) -> None:
        message = {
            "type": "race.frame",
            "frame": stored.frame,
            "text": stored.text,
            "compact": stored.compact,
            "due": stored.due,
        }
        await self._send(feed.group, message)
        self.stats.frames_sent += 1
        self.stats.per_race_frame[feed.slug] = stored.frame
        raw = stored.raw
        for start in range(0, len(raw), SEED_EVENTS_PER_MESSAGE):  # a backlog: many events
            events = raw[start : start + SEED_EVENTS_PER_MESSAGE]
            race = wire.exchange_name(feed.slug)
            await self._send(
                wire.SEED_GROUP, {"type": "race.events", "race": race, "events": events}
            )

    async def _check_alerts(self) -> None:
        """Race control's alerts of each running race, about once a second."""
        await alert_feed.check_feeds(list(self.feeds.values()), self._in_db)

    # ---- plumbing ----------------------------------------------------------------------

    async def _announce(self, slug: str, status: str, summary: dict | None = None) -> None:
        """`{"type": "race", ...the race summary}` to the race's spectators and the race
        list (started_at, finished_at and status change with it)."""
        summary = summary or await self._in_db(race_records.race_summary, slug)
        if summary is None:
            return
        notice = wire.race_notice(summary, status)
        race = {key: value for key, value in notice.items() if key != "type"}
        if status != "draft":  # a reset reaches the race's spectators as a new snapshot
            message = {"type": "race.status", "status": status, "race": race}
            await self._send(wire.race_group(slug), message)
        message = {"type": "race.status", "slug": slug, "text": wire.dumps(notice)}
        await self._send(wire.RACES_GROUP, message)

    async def _in_db(self, function: Callable, *args: Any) -> Any:
        """Run `function` in the relay's database thread (one connection, kept open)."""
        return await self._start_in_db(function, *args)

    def _start_in_db(self, function: Callable, *args: Any) -> asyncio.Future:
        """`_in_db`, started now: the caller can work until it awaits the result."""
        return asyncio.get_running_loop().run_in_executor(self._db, _checked, function, args)


def _checked(function: Callable, args: tuple) -> Any:
    """Call `function`; after a database error, drop the connection so the next call
    opens a fresh one (a restarted PostgreSQL must not leave the relay stuck)."""
    try:
        return function(*args)
    except DatabaseError:
        connection.close()
        raise


def _timed_store(*args: Any) -> int:
    """`live_store.store_frame`, timed where it runs (the encodings overlap it)."""
    with metrics.RELAY_BATCH_INSERT_SECONDS.time():
        return live_store.store_frame(*args)


def _compact(slug: str, previous: dict[int, dict], update: dict) -> bytes | None:
    """The update in `raceweb.v2`, or None if it cannot be encoded (logged): the v2
    sockets then get the v1 text, which the page reads too."""
    try:
        return wire_v2.encode_update(previous, update, repeats=False)
    except Exception:
        logger.exception("race %s: frame %s not encoded for raceweb.v2", slug, update["frame"])
        return None


def _close_db_connection() -> None:
    # Looked up in the executor thread: each thread has its own connection.
    connection.close()


def _ack_all(batch: Iterable[Batch]) -> None:
    for _, ack in batch:
        if ack is not None:
            ack()
