"""Embedded mode: the relay core runs inside the web process, on the in-memory layer.

The same `RelayCore` as `manage.py relay`, minus AMQP. The in-process simulation feeds it
with `publish`, which has the signature of `simulator.publishers.CallbackPublisher`'s
callback, so the runner needs nothing else:

    CallbackPublisher(races.relay.embedded.publish)

`publish` and `notify` may be called from any thread (a runner thread, an admin request)
or from the server's event loop. The core starts in the server's event loop with `start()`
— from daphne's ready hook (`manage.py serve`), or else by `EmbeddedRelayMiddleware` on
the first HTTP request or WebSocket; until then, events wait in a buffer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from races import wire
from races.relay.core import RelayCore

logger = logging.getLogger(__name__)

MAX_WAITING_BATCHES = 100_000

_lock = threading.Lock()
_core: RelayCore | None = None
_loop: asyncio.AbstractEventLoop | None = None
_waiting: deque[tuple[str, Any]] = deque(maxlen=MAX_WAITING_BATCHES)


def publish(exchange: str, events: Sequence[dict]) -> None:
    """Hand one batch of contract events of race exchange `race-<slug>` to the relay."""
    slug = wire.slug_of_exchange(exchange)
    _submit("events", (slug, list(events)))


def notify(notice: dict) -> None:
    """A race changed status: the notice `races.relay.broker.notify_relay` would send."""
    _submit("notice", notice)


def notify_relay(race: Any) -> None:
    """lifecycle hook of embedded mode: tell the in-process relay that `race` changed."""
    notify(wire.control_notice(race.slug, race.status, race.generation))


def send_decision(decision: Any) -> None:
    """on_decided hook of embedded mode: a race-control decision to the in-process relay."""
    notify(decision.message())


def start() -> RelayCore:
    """Run the embedded relay in the running event loop (idempotent per loop)."""
    global _core, _loop
    loop = asyncio.get_running_loop()
    with _lock:
        if _core is not None and _loop is loop and not loop.is_closed():
            return _core
        _core, _loop = RelayCore(), loop
        core = _core
        waiting = list(_waiting)
        _waiting.clear()
    core.loop = loop
    core.spawn(_run(core, waiting))
    return core


def start_when_loop_runs() -> None:
    """For a server's ready hook, called before its event loop runs (daphne's
    `ready_callable`): the relay is up before the first visitor, so the in-process
    simulation's events never wait for one."""
    asyncio.get_event_loop().call_soon(start)


async def _run(core: RelayCore, waiting: list[tuple[str, Any]]) -> None:
    await core.start()
    for kind, payload in waiting:
        _deliver(core, kind, payload)
    await core.run()


def _submit(kind: str, payload: Any) -> None:
    with _lock:
        core, loop = _core, _loop
        if core is None or loop is None or loop.is_closed():
            _waiting.append((kind, payload))
            return
    loop.call_soon_threadsafe(_deliver, core, kind, payload)


def _deliver(core: RelayCore, kind: str, payload: Any) -> None:
    if kind == "events":
        core.ingest(*payload)
    else:
        core.spawn(core.on_control(payload))


def stop() -> None:
    """Forget the core (tests; the server's loop is closing)."""
    global _core, _loop
    with _lock:
        if _core is not None:
            _core.stop()
        _core = _loop = None
        _waiting.clear()


class EmbeddedRelayMiddleware:
    """ASGI middleware that makes sure the embedded relay runs in the server's loop."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            start()
        await self.app(scope, receive, send)
