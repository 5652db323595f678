"""Writing a frame straight to daphne sockets: framing, order, partial writes, fallbacks."""

import functools

import pytest

from races.spectators.socket_writer import Outgoing, SlowClient, direct_writer


class FakeTransport:
    """The parts of a Twisted TCP transport the writer touches."""

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


class FakeProtocol:
    STATE_OPEN = 1

    def __init__(self, transport: FakeTransport) -> None:
        self.state = self.STATE_OPEN
        self._perMessageCompress = None
        self.transport = transport


class FakeServer:
    async def handle_reply(self, protocol, message):  # what daphne hands an application
        raise AssertionError("the direct path should have been taken")


def daphne_send(protocol) -> functools.partial:
    return functools.partial(FakeServer().handle_reply, protocol)


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
    protocol.state = 2  # closing
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
