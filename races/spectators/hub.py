"""The spectator fan-out of one web process: ONE channel-layer subscription per race.

DESIGN.md measured tutorial-style Channels (a layer message per consumer, dispatched by
AsyncConsumer with a `close_old_connections()` hop each time) at ~3,000 frames/s per
process. Here a hub per race and process owns the one layer channel subscribed to the
group `race.<slug>`; it keeps the race's current state (the snapshot, merged from the
frames), a ring of recent frames for resuming clients, and the process's sockets of that
race. A frame arrives already serialized by the relay: the hub parses it once (to keep
its state), and writes the same text to every socket — framed once and sent straight to
daphne's sockets (`races.spectators.socket_writer`), or through the plain ASGI `send` elsewhere. No
ORM, no thread hop, no per-socket layer traffic on this path.

Ordering per socket: a socket that joins (or resumes) is registered first with a
*backlog*; frames broadcast while its snapshot or catch-up frames are being written go to
that backlog, which is written right after. So every socket sees snapshot N, then N+1,
N+2, ... without gap or duplicate.

Gaps: the relay stores a frame before sending it, so when a frame number is skipped
(channels-rabbitmq drops messages during a broker restart), the hub reloads the snapshot
from the database and sends it to all its sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from races.operations import metrics
from races.relay import live_store
from races.relay.core import RACES_GROUP, SEED_GROUP, dumps, race_group
from races.relay.race_state import leaderboard_sort_key
from races.spectators.socket_writer import Outgoing, SlowClient, direct_writer

logger = logging.getLogger(__name__)

GROUP_ADD_TIMEOUT_S = 5.0
RING_FRAMES = 1200  # five minutes at 4 frames per second
LINGER_S = 30.0  # a hub without sockets stays subscribed this long (reconnects are cheap)

Send = Callable[[dict], Awaitable[None]]
_background: set[asyncio.Future] = set()


def _spawn(coroutine: Any) -> None:
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


class HubUnavailable(RuntimeError):
    """The channel layer did not answer in time (broker down)."""


class Spectator:
    """One socket as a hub sees it: how to write to it, and its backlog while it catches
    up."""

    __slots__ = ("backlog", "direct", "race", "send")

    def __init__(self, send: Send, race: str | None = None) -> None:
        self.send = send
        self.direct = direct_writer(send)  # daphne: framed once, one send() per socket
        self.race = race  # seed sockets: the exchange name they follow, or None for all
        self.backlog: list[Outgoing] | None = None

    async def put(self, message: Outgoing) -> None:
        if self.direct is None or not self.direct(message):
            await self.send(message.asgi)

    async def deliver(self, messages: list[Outgoing]) -> None:
        """Write `messages`, then whatever was broadcast meanwhile, then go live."""
        for message in messages:
            await self.put(message)
        while self.backlog:
            pending, self.backlog = self.backlog, []
            for message in pending:
                await self.put(message)
        self.backlog = None


def text_message(text: str) -> Outgoing:
    return Outgoing(text)


class GroupHub:
    """A layer subscription shared by the sockets of one process."""

    endpoint = ""  # the `endpoint` label of its metrics (races.operations.metrics.ENDPOINTS)

    def __init__(self, group: str) -> None:
        self.group = group
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.spectators: tuple[Spectator, ...] = ()  # replaced, never mutated: safe to iterate
        self.closed = False
        self._receiver: asyncio.Task | None = None
        self._linger: asyncio.TimerHandle | None = None
        self.on_close: Callable[[GroupHub], None] | None = None

    async def subscribe(self) -> None:
        self.channel = await self.layer.new_channel()
        adding = asyncio.ensure_future(self.layer.group_add(self.group, self.channel))
        try:
            await asyncio.wait_for(asyncio.shield(adding), GROUP_ADD_TIMEOUT_S)
        except TimeoutError as error:
            adding.add_done_callback(lambda _: _spawn(self._discard()))
            raise HubUnavailable(f"no channel layer for {self.group}") from error

    def listen(self) -> None:
        self._receiver = asyncio.create_task(self._receive_loop(), name=f"hub {self.group}")

    async def _receive_loop(self) -> None:
        while not self.closed:
            try:
                message = await self.layer.receive(self.channel)
                await self.handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.closed:
                    return
                logger.exception("hub %s: message failed", self.group)

    async def handle(self, message: dict) -> None:
        raise NotImplementedError

    async def broadcast(
        self,
        message: Outgoing,
        spectators: tuple[Spectator, ...] | None = None,
        *,
        positions: int = 0,
    ) -> int:
        """Send `message` to the spectators; return how many got it (or will, from their
        backlog). `positions`: athlete positions the message carries, for the metrics."""
        handed = 0
        for spectator in self.spectators if spectators is None else spectators:
            if spectator.backlog is not None:
                spectator.backlog.append(message)
                handed += 1
                continue
            try:
                if spectator.direct is None or not spectator.direct(message):
                    await spectator.send(message.asgi)
            except SlowClient as error:  # dropped; its own task leaves the hub
                logger.info("%s: dropped a spectator that stopped reading (%s)", self.group, error)
                metrics.websocket_error(self.endpoint, "slow_client")
                continue
            except Exception:  # the socket went away; its own task cleans up
                logger.debug("send to a closed socket of %s", self.group)
                continue
            handed += 1
        if handed:
            metrics.frames_sent(self.endpoint, handed, positions)
        return handed

    def add(self, spectator: Spectator) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.spectators = (*self.spectators, spectator)

    def leave(self, spectator: Spectator) -> None:
        self.spectators = tuple(s for s in self.spectators if s is not spectator)
        if not self.spectators and not self.closed:
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(LINGER_S, lambda: _spawn(self.close()))

    async def close(self, *, force: bool = False) -> None:
        if self.closed or (self.spectators and not force):
            return
        self.closed = True
        if self.on_close:
            self.on_close(self)
        if self._receiver is not None:
            self._receiver.cancel()
        await self._discard()

    async def _discard(self) -> None:
        try:
            await asyncio.wait_for(
                asyncio.shield(self.layer.group_discard(self.group, self.channel)),
                GROUP_ADD_TIMEOUT_S,
            )
        except TimeoutError:
            logger.warning("hub %s: group_discard timed out", self.group)


class RaceHub(GroupHub):
    """All spectators of one race in this process (protocol: docs/ARCHITECTURE.md)."""

    endpoint = "race"

    def __init__(self, slug: str) -> None:
        super().__init__(race_group(slug))
        self.slug = slug
        self.frame = 0
        self.loaded_frame = 0  # frames up to here are inside the loaded snapshot
        self.race: dict = {}
        self.course: dict | None = None
        self.athletes: dict[int, dict] = {}
        self.ring: deque[tuple[int, Outgoing]] = deque(maxlen=RING_FRAMES)
        self._snapshot: tuple[int, Outgoing] | None = None
        self.resyncs = 0  # for metrics: snapshots reloaded after a gap

    async def start(self) -> None:
        if not await database_sync_to_async(live_store.race_exists)(self.slug):
            raise live_store.UnknownRace(self.slug)
        await self.subscribe()
        try:
            await self.load()
        except BaseException:
            await self._discard()
            raise
        self.listen()

    async def load(self) -> None:
        """(Re)load the snapshot from the database: it is never behind a received frame."""
        snapshot = await database_sync_to_async(live_store.read_snapshot)(self.slug)
        self.frame = self.loaded_frame = snapshot["frame"]
        self.race = snapshot["race"]
        self.course = snapshot["course"]
        self.athletes = {athlete["id"]: athlete for athlete in snapshot["athletes"]}
        self.ring.clear()
        self._snapshot = None

    # ---- what spectators get ---------------------------------------------------------

    def snapshot_message(self) -> Outgoing:
        """The `snapshot` message at the current frame, serialized once per frame."""
        if self._snapshot is None or self._snapshot[0] != self.frame:
            began = time.perf_counter()
            athletes = sorted(self.athletes.values(), key=leaderboard_sort_key)
            text = dumps(
                {
                    "type": "snapshot",
                    "frame": self.frame,
                    "race": self.race,
                    "course": self.course,
                    "athletes": athletes,
                }
            )
            self._snapshot = (self.frame, text_message(text))
            metrics.observe_snapshot(len(text.encode()), time.perf_counter() - began)
        return self._snapshot[1]

    def catch_up(self, since: int | None) -> list[Outgoing]:
        """Frames after `since` if the ring still has them all, else a snapshot."""
        if since is None or since > self.frame or since < 0:
            return [self.snapshot_message()]
        if since == self.frame:
            return []
        if self.ring and self.ring[0][0] <= since + 1:
            return [message for frame, message in self.ring if frame > since]
        return [self.snapshot_message()]

    async def join(self, spectator: Spectator, since: int | None = None) -> None:
        spectator.backlog = []
        messages = self.catch_up(since)
        self.add(spectator)
        await spectator.deliver(messages)
        metrics.frames_sent(self.endpoint, len(messages), 0)

    async def resume(self, spectator: Spectator, since: int) -> None:
        spectator.backlog = []
        messages = self.catch_up(since)
        await spectator.deliver(messages)
        metrics.frames_sent(self.endpoint, len(messages), 0)

    # ---- what the relay sends --------------------------------------------------------

    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "race.frame":
            await self._on_frame(message)
        elif kind == "race.status":
            race = message.get("race") or {"status": message["status"]}
            self.race = {**self.race, **race}
            self._snapshot = None
            await self.broadcast(text_message(dumps({"type": "race", **race})))
        elif kind == "race.reset":
            await self.resync()

    async def _on_frame(self, message: dict) -> None:
        frame = message["frame"]
        if frame == self.frame + 1:
            text = message["text"]
            update = json.loads(text)
            athletes = self.athletes
            for athlete in update["athletes"]:
                known = athletes.get(athlete["id"])
                if known is None:
                    athletes[athlete["id"]] = athlete
                else:
                    known.update(athlete)  # `splits` only comes when it changed
            self.frame = frame
            self.race = {**self.race, "clock_s": update.get("clock_s")}
            outgoing = text_message(text)
            self.ring.append((frame, outgoing))
            handed = await self.broadcast(outgoing, positions=len(update["athletes"]))
            due = message.get("due")  # when this frame's positions were due (the relay's)
            if handed and due:
                metrics.observe_delivery(self.slug, due)
        elif frame > self.loaded_frame:
            logger.warning("race %s: frame %s after %s; resyncing", self.slug, frame, self.frame)
            metrics.FRAME_RESYNCS.inc()
            await self.resync()
        # else: already inside the snapshot loaded after subscribing

    async def resync(self) -> None:
        self.resyncs += 1
        await self.load()
        await self.broadcast(self.snapshot_message())


class RaceListHub(GroupHub):
    """Race-list sockets of this process: announcements of races starting and ending."""

    endpoint = "races"

    def __init__(self) -> None:
        super().__init__(RACES_GROUP)

    async def start(self) -> None:
        await self.subscribe()
        self.listen()

    async def handle(self, message: dict) -> None:
        if message.get("type") == "race.status":
            await self.broadcast(text_message(message["text"]))


class SeedHub(GroupHub):
    """Seed-compatible sockets (`ws?race=...`): every contract event as its own message."""

    endpoint = "seed"

    def __init__(self) -> None:
        super().__init__(SEED_GROUP)

    async def start(self) -> None:
        await self.subscribe()
        self.listen()

    async def handle(self, message: dict) -> None:
        if message.get("type") != "race.events":
            return
        race = message["race"]
        listeners = tuple(s for s in self.spectators if s.race is None or s.race == race)
        for text in message["events"]:
            await self.broadcast(text_message(text), listeners, positions=1)


# ---- the process's hubs ------------------------------------------------------------------

_registries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def _hub(key: str, factory: Callable[[], GroupHub]) -> Any:
    """The running hub for `key` in this event loop, started once however many ask."""
    loop = asyncio.get_running_loop()
    hubs: dict[str, asyncio.Future] = _registries.setdefault(loop, {})
    pending = hubs.get(key)
    if pending is not None:
        hub = await asyncio.shield(pending)
        if not hub.closed:
            return hub
    pending = hubs[key] = loop.create_future()
    hub = factory()

    def forget(closed: GroupHub) -> None:
        if hubs.get(key) is pending:
            del hubs[key]

    hub.on_close = forget
    try:
        await hub.start()
    except BaseException as error:
        del hubs[key]
        pending.set_exception(error)
        pending.exception()  # retrieved: no "never retrieved" warning when nobody waits
        raise
    pending.set_result(hub)
    return hub


async def race_hub(slug: str) -> RaceHub:
    """This process's hub of race `slug`; raises live_store.UnknownRace, HubUnavailable."""
    return await _hub(f"race:{slug}", lambda: RaceHub(slug))


async def race_list_hub() -> RaceListHub:
    return await _hub("races", RaceListHub)


async def seed_hub() -> SeedHub:
    return await _hub("seed", SeedHub)


async def close_all() -> None:
    """Unsubscribe every hub of this event loop (server shutdown, tests)."""
    hubs = _registries.get(asyncio.get_running_loop(), {})
    for pending in list(hubs.values()):
        if pending.done() and not pending.exception():
            await pending.result().close(force=True)
