"""Writing a frame straight to daphne sockets: framing, order, partial writes, fallbacks,
and the fence around the library internals it reads (races.spectators.writer_fence)."""

import functools
import importlib.metadata
import logging

import pytest
from autobahn.websocket.protocol import WebSocketServerProtocol
from prometheus_client import REGISTRY
from twisted.internet import abstract, tcp

from races.spectators import socket_writer, writer_fence
from races.spectators.hub import GroupHub, Spectator
from races.spectators.socket_writer import Outgoing, SlowClient, direct_writer


@pytest.fixture(autouse=True)
def fresh_fence(monkeypatch):
    """Each test is a fresh process as far as the checks and their one warning go."""
    monkeypatch.setattr(socket_writer, "fence", writer_fence.Fence())
    monkeypatch.setattr(socket_writer, "_warned_write_error", False)


class FakeTransport(tcp.Connection):
    """A Twisted TCP transport with the kernel replaced: what send() took is kept."""

    TLS = False

    def __init__(self, accepts: int | None = None) -> None:
        self.connected = True
        self._writeDisconnected = False
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.accepts = accepts  # bytes the kernel takes per send(); None = all
        self.sent: list[bytes] = []  # went out with send()
        self.buffered: list[bytes] = []  # handed to Twisted's write()

    def writeSomeData(self, data) -> int:  # Twisted's name
        taken = bytes(data if self.accepts is None else data[: self.accepts])
        self.sent.append(taken)
        return len(taken)

    def write(self, data: bytes) -> None:
        self.buffered.append(data)
        self._tempDataLen += len(data)

    def abortConnection(self) -> None:  # Twisted's name
        self.connected = False


class FakeProtocol(WebSocketServerProtocol):
    """autobahn's server protocol (daphne's base), on a FakeTransport."""

    def __init__(self, transport: FakeTransport) -> None:
        self.state = self.STATE_OPEN
        self._perMessageCompress = None
        self.transport = transport


class FakeServer:
    def __init__(self) -> None:
        self.replies: list[dict] = []  # what went through the ASGI send

    async def handle_reply(self, protocol, message):  # what daphne hands an application
        self.replies.append(message)


def daphne_send(protocol, server: FakeServer | None = None) -> functools.partial:
    return functools.partial((server or FakeServer()).handle_reply, protocol)


def payload_of(frame: bytes) -> str:
    """Decode an unmasked server text frame (RFC 6455, section 5.2)."""
    assert frame[0] == 0x81  # FIN + text
    length, start = frame[1], 2
    if length == 126:
        length, start = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, start = int.from_bytes(frame[2:10], "big"), 10
    assert len(frame) == start + length
    return frame[start:].decode()


def test_a_frame_is_framed_once_and_sent_with_one_send():
    transport = FakeTransport()
    write = direct_writer(daphne_send(FakeProtocol(transport)))
    message = Outgoing('{"type":"update","frame":7,"text":"' + "é" * 70_000 + '"}')
    assert write(message) is True
    assert write(message) is True
    assert transport.sent == [message.frame(), message.frame()]
    assert payload_of(transport.sent[0]) == message.text
    assert transport.buffered == []


def test_what_the_kernel_does_not_take_goes_to_twisted_and_later_frames_queue_behind_it():
    transport = FakeTransport(accepts=1000)
    write = direct_writer(daphne_send(FakeProtocol(transport)))
    first, second = Outgoing("a" * 5000), Outgoing("b" * 10)
    write(first)
    write(second)
    assert len(transport.sent) == 1  # the second frame did not overtake the first's rest
    assert transport.sent[0] + transport.buffered[0] == first.frame()
    assert transport.buffered[1] == second.frame()


def test_closing_compressed_or_tls_sockets_use_the_asgi_path():
    transport = FakeTransport()
    protocol = FakeProtocol(transport)
    write = direct_writer(daphne_send(protocol))
    protocol.state = protocol.STATE_CLOSING
    assert write(Outgoing("x")) is False
    protocol.state, protocol._perMessageCompress = protocol.STATE_OPEN, object()
    assert write(Outgoing("x")) is False
    protocol._perMessageCompress, transport.TLS = None, True
    assert write(Outgoing("x")) is False
    assert transport.sent == transport.buffered == []


def test_other_servers_get_no_direct_writer():
    async def send(message):
        pass

    assert direct_writer(send) is None
    assert direct_writer(functools.partial(send)) is None


def test_a_client_that_stops_reading_is_dropped_once_too_much_waits_for_it(settings):
    settings.WS_SEND_BUFFER_BYTES = 10_000
    transport = FakeTransport(accepts=0)  # the kernel buffer is full: nothing goes out
    write = direct_writer(daphne_send(FakeProtocol(transport)))
    for _ in range(4):
        assert write(Outgoing("x" * 2000)) is True  # buffered, up to the limit
    with pytest.raises(SlowClient):
        write(Outgoing("x" * 2000))
    assert transport.connected is False
    assert write(Outgoing("x")) is False  # gone: the ASGI path (a no-op in daphne) is left


# ---- the fence -------------------------------------------------------------------------


def fallbacks(reason: str) -> float:
    value = REGISTRY.get_sample_value("raceweb_socket_writer_fallbacks_total", {"reason": reason})
    return value or 0.0


def test_every_internal_is_there_on_the_versions_it_was_verified_on():
    installed = {name: importlib.metadata.version(name) for name in writer_fence.VERIFIED_ON}
    assert installed == writer_fence.VERIFIED_ON, "re-check writer_fence's list, then bump"
    assert writer_fence.missing_on_classes() == []
    assert writer_fence.missing_on_socket(FakeProtocol(FakeTransport())) == []


def test_the_checker_names_what_a_library_no_longer_has(monkeypatch):
    monkeypatch.delattr(abstract.FileDescriptor, "_writeDisconnected")
    monkeypatch.setattr("autobahn.websocket.protocol.PreparedMessage", lambda *args: object())
    assert writer_fence.missing_on_classes() == [
        "twisted.internet.tcp.Connection._writeDisconnected",
        "autobahn.websocket.protocol.PreparedMessage(...).payloadHybi as an RFC 6455 frame",
    ]
    monkeypatch.delattr("autobahn.websocket.protocol.PreparedMessage")
    assert "autobahn.websocket.protocol.PreparedMessage" in writer_fence.missing_on_classes()

    transport = FakeTransport()
    del transport._tempDataLen
    protocol = FakeProtocol(transport)
    del protocol._perMessageCompress
    assert writer_fence.missing_on_socket(protocol) == [
        "autobahn.websocket.protocol.<protocol>._perMessageCompress",
        "twisted.internet.tcp.<transport>._tempDataLen",
    ]


def test_a_missing_internal_sends_every_frame_through_asgi_warns_once_and_counts(
    monkeypatch, caplog
):
    monkeypatch.delattr(abstract.FileDescriptor, "_writeDisconnected")
    before = fallbacks("missing_internal")
    transport, server = FakeTransport(), FakeServer()
    with caplog.at_level(logging.WARNING):
        writes = [direct_writer(daphne_send(FakeProtocol(transport), server)) for _ in range(2)]
        assert [write(Outgoing(text)) for write in writes for text in "ab"] == [False] * 4
    assert transport.sent == transport.buffered == []
    assert fallbacks("missing_internal") - before == 4
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert "twisted.internet.tcp.Connection._writeDisconnected" in warning.getMessage()


def test_an_internal_missing_on_the_first_socket_is_found_there(caplog):
    transport = FakeTransport()
    del transport._tempDataLen
    with caplog.at_level(logging.WARNING):
        write = direct_writer(daphne_send(FakeProtocol(transport)))
        assert write(Outgoing("x")) is False
    assert "<transport>._tempDataLen" in caplog.text


async def test_a_fast_path_that_fails_on_a_frame_sends_that_frame_through_asgi(caplog):
    transport, server = FakeTransport(), FakeServer()
    protocol = FakeProtocol(transport)
    hub = GroupHub("race.fence-test")
    hub.endpoint = "race"
    hub.add(Spectator(daphne_send(protocol, server)))
    before = fallbacks("write_error")
    del transport._tempDataLen  # gone after the socket was checked: fails on the frame
    with caplog.at_level(logging.WARNING):
        assert await hub.broadcast(Outgoing("first")) == 1
        assert await hub.broadcast(Outgoing("second")) == 1
    assert server.replies == [{"type": "websocket.send", "text": t} for t in ("first", "second")]
    assert transport.sent == transport.buffered == []
    assert fallbacks("write_error") - before == 2
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
