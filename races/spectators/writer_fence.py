"""The library internals `races.spectators.socket_writer` reads, listed and checked once.

The socket writer frames a message once (autobahn's `PreparedMessage`) and writes it with
one `send()` per socket by reading Twisted's write buffer and autobahn's protocol state:
names no library promises to keep. They are all listed here, with the versions they were
verified on. The first time the writer is used in a process, the names looked up on the
classes are checked; the names the libraries set on each object (`_tempDataLen`, ...) are
checked on the first daphne socket. Both happen at first use rather than at app start-up
because only a web process serving sockets needs them (the relay, the worker and
`manage.py` commands never import Twisted's TCP module for nothing), and because the
per-object names can only be seen on a real socket.

If anything is missing, every frame of this process goes through the public ASGI `send`
(slower, never lost): a WARNING names what is missing, once per process, and
`raceweb_socket_writer_fallbacks_total{reason="missing_internal"}` counts the frames.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Where every name below was last verified (see the module doc; `pip freeze` of the lock).
VERIFIED_ON = {"Twisted": "26.10.0", "autobahn": "26.10.2", "daphne": "4.2.3"}


@dataclass(frozen=True)
class Internal:
    """One name the writer relies on: `module.owner.name` (owner "" for a module name)."""

    module: str
    owner: str
    name: str

    def __str__(self) -> str:
        return ".".join(part for part in (self.module, self.owner, self.name) if part)


_AUTOBAHN = "autobahn.websocket.protocol"
_TCP = "twisted.internet.tcp"

# Looked up on the modules and classes, once per process.
ON_CLASSES: tuple[Internal, ...] = (
    Internal(_AUTOBAHN, "", "WebSocketServerProtocol"),  # what daphne's sockets are
    Internal(_AUTOBAHN, "WebSocketProtocol", "STATE_OPEN"),
    Internal(_AUTOBAHN, "", "PreparedMessage"),  # (payload, isBinary, applyMask, doNotCompress)
    Internal(_TCP, "", "Connection"),  # a plain TCP socket (not TLS-in-a-wrapper)
    *(
        Internal(_TCP, "Connection", name)
        for name in (
            "TLS",
            "connected",
            "_writeDisconnected",
            "dataBuffer",
            "offset",
            "writeSomeData",
            "write",
            "abortConnection",
        )
    ),
)
# Set by the libraries on each object: looked up on the first daphne socket.
ON_PROTOCOL: tuple[str, ...] = ("state", "_perMessageCompress", "transport")
ON_TRANSPORT: tuple[str, ...] = ("_tempDataLen",)

_FRAME_OF_OK = b"\x81\x02ok"  # RFC 6455: FIN + text, unmasked, 2 bytes, "ok"


_ABSENT = object()


def lookup(item: Internal) -> Any:
    """The object `item` names, or None when it is not there."""
    try:
        found: Any = importlib.import_module(item.module)
    except ImportError:
        return None
    for part in (item.owner, item.name):
        if part:
            found = getattr(found, part, _ABSENT)
            if found is _ABSENT:
                return None
    return found


def present(item: Internal) -> bool:
    try:
        owner: Any = importlib.import_module(item.module)
    except ImportError:
        return False
    if item.owner:
        owner = getattr(owner, item.owner, _ABSENT)
    return owner is not _ABSENT and hasattr(owner, item.name)


def missing_on_classes() -> list[str]:
    """What of ON_CLASSES is not there, plus `PreparedMessage` not framing as it did."""
    missing = [str(item) for item in ON_CLASSES if not present(item)]
    prepared = lookup(Internal(_AUTOBAHN, "", "PreparedMessage"))
    if prepared is not None:
        try:
            framed = prepared(b"ok", False, False, False).payloadHybi
        except Exception:  # any change of signature or attribute
            framed = None
        if framed != _FRAME_OF_OK:
            missing.append(f"{_AUTOBAHN}.PreparedMessage(...).payloadHybi as an RFC 6455 frame")
    return missing


def missing_on_socket(protocol: Any) -> list[str]:
    """What of ON_PROTOCOL / ON_TRANSPORT a daphne socket's objects lack."""
    missing = [
        f"{_AUTOBAHN}.<protocol>.{name}" for name in ON_PROTOCOL if not hasattr(protocol, name)
    ]
    transport = getattr(protocol, "transport", None)
    connection = lookup(Internal(_TCP, "", "Connection"))
    if connection is not None and isinstance(transport, connection):
        missing += [
            f"{_TCP}.<transport>.{name}" for name in ON_TRANSPORT if not hasattr(transport, name)
        ]
    return missing


class Fence:
    """Whether this process may take the fast path; checks once, warns once."""

    def __init__(self) -> None:
        self.missing: list[str] | None = None  # None: the classes are not checked yet
        self.socket_checked = False

    def classes_ok(self) -> bool:
        if self.missing is None:
            self.missing = missing_on_classes()
            if self.missing:
                self._warn()
        return not self.missing

    def socket_ok(self, protocol: Any) -> bool:
        if not self.classes_ok():
            return False
        if not self.socket_checked:
            self.socket_checked = True
            self.missing = missing_on_socket(protocol)
            if self.missing:
                self._warn()
        return not self.missing

    def _warn(self) -> None:
        versions = ", ".join(f"{name} {version}" for name, version in VERIFIED_ON.items())
        logger.warning(
            "socket writer: library internals missing (%s); every frame of this process "
            "goes through the ASGI send instead (verified on %s)",
            "; ".join(self.missing or ()),
            versions,
        )


fence = Fence()
