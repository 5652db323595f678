"""The spectator fan-out of one web process: ONE channel-layer subscription per group.

DESIGN.md measured tutorial-style Channels (a layer message per consumer, dispatched by
AsyncConsumer with a `close_old_connections()` hop each time) at ~3,000 frames/s per
process. Here a hub per group and process owns the one layer channel subscribed to the
group (`race.<slug>`: `races.spectators.race_hub`; the race list; the seed sockets) and
the process's sockets of it. A message is written to every socket as the same text —
framed once and sent straight to daphne's sockets (`races.spectators.socket_writer`), or
through the plain ASGI `send` elsewhere. No ORM, no thread hop, no per-socket layer
traffic on this path.

Ordering per socket: a socket that joins (or resumes) is registered first with a
*backlog*; frames broadcast while its snapshot or catch-up frames are being written go to
that backlog, which is written right after. So every socket sees snapshot N, then N+1,
N+2, ... without gap or duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from races import wire
from races.operations import metrics
from races.operations.garbage_collection import collections_deferred
from races.spectators import access
from races.spectators.socket_writer import Outgoing, SlowClient, direct_writer
from races.wire import RACES_GROUP, SEED_GROUP

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

    __slots__ = ("backlog", "compact", "direct", "race", "send")

    def __init__(self, send: Send, race: str | None = None, *, compact: bool = False) -> None:
        self.send = send
        self.compact = compact  # asked for `raceweb.v2`: gets a message's compact form
        self.direct = direct_writer(send)  # daphne: framed once, one send() per socket
        self.race = race  # seed sockets: the exchange name they follow, or None for all
        self.backlog: list[Outgoing] | None = None

    def form(self, message: Outgoing) -> Outgoing:
        """The message in this socket's protocol."""
        return message.compact if self.compact and message.compact is not None else message

    async def put(self, message: Outgoing) -> None:
        message = self.form(message)
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
                with collections_deferred():  # a message's objects die young
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
                form = spectator.form(message)
                if spectator.direct is None or not spectator.direct(form):
                    await spectator.send(form.asgi)
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
            if message.get("slug") in await hidden_slugs():
                return  # unlisted and private races are never announced to the list
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
        listed = wire.slug_of_exchange(race) not in await hidden_slugs()
        listeners = tuple(
            s for s in self.spectators if s.race == race or (s.race is None and listed)
        )
        for text in message["events"]:
            await self.broadcast(text_message(text), listeners, positions=1)


async def hidden_slugs() -> frozenset[str]:
    """Slugs of unlisted and private races (cached a moment: this is on every frame)."""
    slugs = access.hidden_slugs_if_fresh()
    if slugs is None:
        slugs = await database_sync_to_async(access.refresh_hidden_slugs)()
    return slugs


# ---- the process's hubs ------------------------------------------------------------------

_registries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def get_hub(key: str, factory: Callable[[], GroupHub]) -> Any:
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


async def race_list_hub() -> RaceListHub:
    return await get_hub("races", RaceListHub)


async def seed_hub() -> SeedHub:
    return await get_hub("seed", SeedHub)


async def close_all() -> None:
    """Unsubscribe every hub of this event loop (server shutdown, tests)."""
    hubs = _registries.get(asyncio.get_running_loop(), {})
    for pending in list(hubs.values()):
        if pending.done() and not pending.exception():
            await pending.result().close(force=True)
