"""Limits on what one address can ask of a web process: open sockets, and messages.

An ASGI middleware in front of every WebSocket route (raceweb/asgi.py):

- at most `WS_MAX_CONNECTIONS_PER_IP` open sockets per client address in this process;
  one more is accepted and closed at once with code 4429, so a client sees why;
- on each socket, client messages are metered by a token bucket
  (`WS_CLIENT_MESSAGES_PER_SECOND`, bursts up to `WS_CLIENT_MESSAGE_BURST`); a socket
  that sends faster is closed with 4429. The protocol needs a message now and then
  (ping, resume), nothing near that.

The address is the ASGI scope's client. Behind a reverse proxy that is the proxy's
address unless daphne runs with `--proxy-headers` (the proxy must then set
X-Forwarded-For); the limits assume it does. 0 turns a limit off.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from django.conf import settings

from races.operations import metrics

CLOSE_TOO_MANY = 4429


class MessageBudget:
    """A token bucket: `rate` messages per second on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.refilled = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def endpoint_of(path: str) -> str:
    """The metrics endpoint label of a WebSocket path (see races.operations.metrics.ENDPOINTS)."""
    if path.rstrip("/") == "/ws/races":
        return "races"
    if path.startswith("/ws/races/"):
        return "race"
    return "seed"


def client_address(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class SocketLimits:
    """The middleware; one instance per process (it counts that process's sockets)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.open_sockets: Counter[str] = Counter()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        limit = settings.WS_MAX_CONNECTIONS_PER_IP
        if limit and self.open_sockets[address] >= limit:
            await _refuse(scope, receive, send)
            return
        self.open_sockets[address] += 1
        try:
            await self.app(scope, _metered(scope, receive, send), send)
        finally:
            self.open_sockets[address] -= 1
            if self.open_sockets[address] <= 0:
                del self.open_sockets[address]


def _metered(scope: dict, receive: Any, send: Any) -> Any:
    rate = settings.WS_CLIENT_MESSAGES_PER_SECOND
    if not rate:
        return receive
    budget = MessageBudget(rate, settings.WS_CLIENT_MESSAGE_BURST)
    closed = False

    async def metered_receive() -> dict:
        nonlocal closed
        if closed:
            return {"type": "websocket.disconnect", "code": CLOSE_TOO_MANY}
        message = await receive()
        if message["type"] == "websocket.receive" and not budget.take():
            closed = True
            metrics.websocket_error(endpoint_of(scope.get("path", "")), "rate_limited")
            await send({"type": "websocket.close", "code": CLOSE_TOO_MANY})
            return {"type": "websocket.disconnect", "code": CLOSE_TOO_MANY}
        return message

    return metered_receive


async def _refuse(scope: dict, receive: Any, send: Any) -> None:
    """Accept, then close with 4429: a browser sees the code (a refused handshake is
    only "error 1006" to a page)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    metrics.websocket_error(endpoint_of(scope.get("path", "")), "rate_limited")
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_TOO_MANY})
