"""One frame to many daphne sockets: framed once, written straight to each TCP socket.

py-spy on a web process fanning frames out to 1,000 sockets through daphne's ASGI `send`
showed most of the time in the per-socket path, not in RaceWeb: daphne's `handle_reply`,
a UTF-8 encode and WebSocket framing per socket (autobahn), then Twisted buffering every
write and registering and unregistering the socket with epoll around it (two
`epoll_ctl` calls per socket per frame, ~25 % of the process). So, when the socket is a
daphne one (its `send` is `functools.partial(Server.handle_reply, protocol)`):

- the frame is built once per message for all sockets (autobahn's `PreparedMessage`);
- it is written with one `send()` on the socket when Twisted has nothing buffered for it,
  as an asyncio transport would; anything not taken by the kernel, or anything written
  while Twisted still holds older bytes, goes through Twisted's own `write` (order kept).

Only plain sockets in the OPEN state without permessage-compression take this path;
everything else (TLS inside daphne, other ASGI servers, tests) uses the ASGI `send`.

A client that stops reading would make Twisted buffer frames for it without end; past
WS_SEND_BUFFER_BYTES (a setting) its connection is dropped (`SlowClient`). It reconnects,
resumes, and gets a snapshot; the other spectators never wait for it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from autobahn.websocket.protocol import PreparedMessage
from django.conf import settings


class Outgoing:
    """One text message for many sockets: the ASGI message and, once asked for, its
    WebSocket frame."""

    __slots__ = ("_frame", "asgi")

    def __init__(self, text: str) -> None:
        self.asgi = {"type": "websocket.send", "text": text}
        self._frame: bytes | None = None

    @property
    def text(self) -> str:
        return self.asgi["text"]

    def frame(self) -> bytes:
        if self._frame is None:
            prepared = PreparedMessage(self.text.encode(), False, False, False)
            self._frame = prepared.payloadHybi
        return self._frame


DirectWrite = Callable[[Outgoing], bool]


class SlowClient(Exception):
    """The socket's unsent bytes passed WS_SEND_BUFFER_BYTES; its connection was dropped."""


def direct_writer(send: Callable[[dict], Awaitable[None]]) -> DirectWrite | None:
    """A writer for daphne's `send` (see module doc), or None for any other server."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    if getattr(send.func, "__name__", "") != "handle_reply":
        return None
    protocol = send.args[0]
    if not hasattr(protocol, "STATE_OPEN") or not hasattr(protocol, "transport"):
        return None
    return functools.partial(_write, protocol)


def _write(protocol: Any, message: Outgoing) -> bool:
    """Write `message` to the socket; False when the ASGI path must be used instead."""
    if protocol.state != protocol.STATE_OPEN or protocol._perMessageCompress is not None:
        return False
    transport = protocol.transport
    if (
        transport is None
        or getattr(transport, "TLS", False)
        or not transport.connected
        or transport._writeDisconnected
    ):
        return False
    frame = message.frame()
    pending = transport._tempDataLen + len(transport.dataBuffer) - transport.offset
    if pending:
        if pending + len(frame) > settings.WS_SEND_BUFFER_BYTES:
            transport.abortConnection()
            raise SlowClient(f"{pending} bytes unsent")
        transport.write(frame)  # behind what Twisted still holds for this socket
        return True
    sent = transport.writeSomeData(frame)
    if isinstance(sent, Exception) or sent < 0:
        transport.write(frame)  # let Twisted meet the error and close the connection
    elif sent < len(frame):
        transport.write(bytes(memoryview(frame)[sent:]))
    return True
