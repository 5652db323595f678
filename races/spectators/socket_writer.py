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

The Twisted and autobahn names read here are private: `races.spectators.writer_fence`
lists them and checks them once per process. Missing ones, or any error of this path
before a byte left, send the frame through the ASGI `send` instead (WARNING once, counted
in `raceweb_socket_writer_fallbacks_total`): a frame is never dropped for it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from races.operations import metrics
from races.spectators.writer_fence import Internal, fence, lookup

logger = logging.getLogger(__name__)

_PREPARED_MESSAGE = Internal("autobahn.websocket.protocol", "", "PreparedMessage")
_SERVER_PROTOCOL = Internal("autobahn.websocket.protocol", "", "WebSocketServerProtocol")
_TCP_CONNECTION = Internal("twisted.internet.tcp", "", "Connection")
_MISSING_INTERNAL = metrics.SOCKET_WRITER_FALLBACKS.labels("missing_internal")
_WRITE_ERROR = metrics.SOCKET_WRITER_FALLBACKS.labels("write_error")


class Outgoing:
    """One message for many sockets: the ASGI message and, once asked for, its WebSocket
    frame. Text (v1 JSON) or bytes (`raceweb.v2`); `compact` is the same message in v2
    for the sockets that asked for it (None: they get this one)."""

    __slots__ = ("_frame", "asgi", "compact")

    def __init__(self, payload: str | bytes, compact: Outgoing | None = None) -> None:
        key = "bytes" if isinstance(payload, bytes) else "text"
        self.asgi = {"type": "websocket.send", key: payload}
        self.compact = compact
        self._frame: bytes | None = None

    @property
    def text(self) -> str:
        return self.asgi["text"]

    @property
    def binary(self) -> bool:
        return "bytes" in self.asgi

    def payload(self) -> bytes:
        return self.asgi["bytes"] if self.binary else self.asgi["text"].encode()

    def frame(self) -> bytes:
        if self._frame is None:
            prepared = lookup(_PREPARED_MESSAGE)(self.payload(), self.binary, False, False)
            self._frame = prepared.payloadHybi
        return self._frame


DirectWrite = Callable[[Outgoing], bool]


class SlowClient(Exception):
    """The socket's unsent bytes passed WS_SEND_BUFFER_BYTES; its connection was dropped."""


def direct_writer(send: Callable[[dict], Awaitable[None]]) -> DirectWrite | None:
    """A writer for daphne's `send` (see module doc), or None for any other server.

    When a library internal is missing, daphne's sockets get `_public_send_only`: it
    counts each frame and leaves it to the ASGI `send`.
    """
    if not isinstance(send, functools.partial) or len(send.args) != 1:
        return None  # daphne's send is partial(Server.handle_reply, protocol)
    if not fence.classes_ok():
        return _public_send_only
    protocol = send.args[0]
    if not isinstance(protocol, lookup(_SERVER_PROTOCOL)):
        return None
    if not isinstance(getattr(protocol, "transport", None), lookup(_TCP_CONNECTION)):
        return None  # TLS inside daphne wraps the TCP connection: the ASGI path
    if not fence.socket_ok(protocol):
        return _public_send_only
    return functools.partial(_write, protocol)


def _public_send_only(message: Outgoing) -> bool:
    _MISSING_INTERNAL.inc()
    return False


_warned_write_error = False


def _write(protocol: Any, message: Outgoing) -> bool:
    """Write `message` to the socket; False when the ASGI path must be used instead."""
    try:
        return _write_frame(protocol, message)
    except SlowClient:
        raise
    except Exception as error:  # a library changed under the fence: nothing was written
        global _warned_write_error
        if not _warned_write_error:
            _warned_write_error = True
            logger.warning(
                "socket writer failed (%r); this frame and any other that fails goes "
                "through the ASGI send",
                error,
                exc_info=True,
            )
        _WRITE_ERROR.inc()
        return False


def _write_frame(protocol: Any, message: Outgoing) -> bool:
    # Everything that can fail (a missing name) is read before the first byte leaves:
    # the writes below are Twisted's, which buffer or report an error, not raise.
    if protocol.state != protocol.STATE_OPEN or protocol._perMessageCompress is not None:
        return False
    transport = protocol.transport
    if (
        transport is None
        or transport.TLS
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
