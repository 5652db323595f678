"""The relay's AMQP intake: race queues and control notices, read with kombu in one thread.

Why kombu in a thread and not aio-pika in the event loop: on the development machine
py-amqp took 20,000 queued events at 9,000 to 14,000 per second, aio-pika 2,700 to 5,800 and
bare aiormq about 7,000 (it makes a task per delivery). The thread also keeps AMQP
parsing out of the loop that runs the channel layer; kombu is the project's AMQP
library everywhere else (lifecycle, simulator) anyway.

The thread hands each race's deliveries to the core in batches (`RelayCore.ingest`,
through `call_soon_threadsafe`) with an ack token; the core calls the token once the
batch is stored, and the thread then acks everything up to that delivery on the race's
channel (`multiple=True`). Anything the thread must do on the connection — ack, consume,
cancel — goes through its command queue, since a kombu connection is not thread-safe.
After a lost connection it reconnects, binds its control queue again and consumes every
race it had; unacked deliveries come back from RabbitMQ and are dropped by `seq`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from amqp.exceptions import ChannelError, ConsumerCancelled
from kombu import Connection, Queue

from races.relay import broker
from races.relay.core import RelayCore

logger = logging.getLogger(__name__)

# Unacked deliveries per race: a frame acks what it stored, so this bounds a frame's batch
# (and the relay's memory); too small and a backlog drains slower than it could.
PREFETCH_PER_RACE = 20000
HANDOFF_EVERY_S = 0.02
# ... or as soon as the socket has been quiet this long with events in hand: the end of a
# burst (a simulation tick) reaches the core at once, not up to HANDOFF_EVERY_S later.
HANDOFF_WHEN_QUIET_S = 0.002
READ_CHUNK_BYTES = 8192
RECONNECT_PAUSE_S = 1.0


class AckToken:
    """Called by the core when a batch is stored: ack up to `tag` on the race's channel."""

    __slots__ = ("channel", "intake", "session", "tag")

    def __init__(self, intake: AmqpIntake, channel: Any, tag: int, session: int) -> None:
        self.intake, self.channel, self.tag, self.session = intake, channel, tag, session

    def __call__(self) -> None:
        self.intake.commands.put(("ack", self))


class AmqpIntake:
    def __init__(self, url: str, core: RelayCore, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self.core = core
        self.loop = loop
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-amqp", daemon=True)
        self._wanted: set[str] = set()  # races to consume, kept across reconnects
        self._channels: dict[str, Any] = {}
        self._buffers: dict[str, list[bytes]] = {}
        self._last: dict[str, tuple[Any, int]] = {}
        self._session = 0  # bumped per connection; acks of an older one are void

    # ---- called from the event loop (EventSource protocol) ---------------------------

    def consume(self, slug: str) -> None:
        self.commands.put(("consume", slug))

    def cancel(self, slug: str, *, delete_queue: bool) -> None:
        self.commands.put(("cancel", slug, delete_queue))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    # ---- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with Connection(self.url, heartbeat=30, connect_timeout=10) as conn:
                    conn.connect()
                    _read_in_chunks(conn)
                    self._session += 1
                    self._channels.clear()
                    self._bind_control(conn)
                    for slug in sorted(self._wanted):
                        self._consume(conn, slug)
                    self.ready.set()
                    logger.info("relay connected to RabbitMQ")
                    # Races started while we were away sent notices nobody heard: ask the
                    # database (after binding the control queue, so none is missed).
                    self.loop.call_soon_threadsafe(self.core.spawn, self.core.start())
                    self._serve(conn)
            except (OSError, ConnectionError, ChannelError) as error:
                if self._stopping.is_set():
                    break
                logger.warning("relay lost RabbitMQ (%s); reconnecting", error)
                time.sleep(RECONNECT_PAUSE_S)
            except Exception:
                logger.exception("relay AMQP intake failed; reconnecting")
                time.sleep(RECONNECT_PAUSE_S)

    def _serve(self, conn: Connection) -> None:
        wait_for_data = _data_waiter(conn)
        while not self._stopping.is_set():
            self._run_commands(conn)
            deadline = time.monotonic() + HANDOFF_EVERY_S
            while (left := deadline - time.monotonic()) > 0:
                if self._buffers:
                    left = min(left, HANDOFF_WHEN_QUIET_S)
                try:
                    if wait_for_data is None:
                        conn.drain_events(timeout=left)
                    elif wait_for_data(left):
                        conn.drain_events()  # data is there: no socket timeout to juggle
                    else:
                        break
                except TimeoutError:  # socket.timeout: nothing more right now
                    break
                except ConsumerCancelled as cancelled:  # the queue was deleted
                    self._forget(str(cancelled.reply_text or ""))
            self._hand_off()
            conn.heartbeat_check()

    def _bind_control(self, conn: Connection) -> None:
        channel = conn.channel()
        control = Queue("", exchange=broker.control_exchange(), exclusive=True, auto_delete=True)(
            channel
        )
        control.declare()
        channel.basic_consume(control.name, callback=self._on_control, no_ack=True)

    def _consume(self, conn: Connection, slug: str) -> None:
        if slug in self._channels:
            return
        channel, relay_queue = broker.declare_relay_queue(conn, slug)
        # Per consumer (global=False): quorum queues and RabbitMQ 4.3 refuse global QoS.
        channel.basic_qos(0, PREFETCH_PER_RACE, False)

        def on_message(message: Any, slug: str = slug, channel: Any = channel) -> None:
            self._buffers.setdefault(slug, []).append(message.body)
            self._last[slug] = (channel, message.delivery_info["delivery_tag"])

        channel.basic_consume(
            relay_queue.name, callback=on_message, no_ack=False, consumer_tag=f"relay-{slug}"
        )
        self._channels[slug] = channel
        logger.info("relay consuming %s", relay_queue.name)

    def _cancel(self, slug: str, delete_queue: bool) -> None:
        self._wanted.discard(slug)
        # Not yet handed over: left unacked, so they stay in the queue (which is then kept).
        self._buffers.pop(slug, None)
        channel = self._channels.pop(slug, None)
        if channel is None:
            return
        try:
            channel.basic_cancel(f"relay-{slug}")
            if delete_queue:
                broker.delete_relay_queue(channel, slug)
            channel.close()
        except ChannelError as error:
            logger.info("relay queue of %s kept: %s", slug, error)

    def _forget(self, consumer_tag: str) -> None:
        slug = consumer_tag.removeprefix("relay-")
        logger.warning("relay queue of race %s went away; not consuming it any more", slug)
        self._wanted.discard(slug)
        self._buffers.pop(slug, None)
        channel = self._channels.pop(slug, None)
        if channel is not None:
            try:
                channel.close()
            except (OSError, ChannelError):
                pass

    def _run_commands(self, conn: Connection) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            if command[0] == "ack":
                token = command[1]
                if token.session == self._session and token.channel.is_open:
                    token.channel.basic_ack(token.tag, multiple=True)
            elif command[0] == "consume":
                self._wanted.add(command[1])
                self._consume(conn, command[1])
            elif command[0] == "cancel":
                self._cancel(command[1], command[2])

    def _hand_off(self) -> None:
        for slug, bodies in self._buffers.items():
            if bodies:
                channel, tag = self._last[slug]
                token = AckToken(self, channel, tag, self._session)
                self.loop.call_soon_threadsafe(self.core.ingest, slug, bodies, token)
        self._buffers = {}

    def _on_control(self, message: Any) -> None:
        try:
            notice = json.loads(message.body)
        except ValueError:
            logger.warning("unreadable control notice: %r", message.body[:200])
            return
        if isinstance(notice, dict):
            self.loop.call_soon_threadsafe(self.core.spawn, self.core.on_control(notice))


def _read_in_chunks(conn: Connection) -> None:
    """Let py-amqp read the socket in chunks rather than frame part by frame part.

    py-amqp's TCP transport asks `recv()` for exactly the bytes of the next frame header,
    payload or end octet: about ten system calls per delivery. Its `_read` keeps whatever
    a `recv()` returns beyond what it asked for, so asking for a chunk is safe; measured
    here, it took a delivery from 55-70 to 35-47 µs of CPU. Left alone if py-amqp's
    transport is not the one this was written for (TLS, another version).
    """
    transport = _tcp_transport(conn)
    if transport is None:
        return
    recv = transport.sock.recv
    transport._quick_recv = lambda wanted: recv(max(wanted, READ_CHUNK_BYTES))


def _data_waiter(conn: Connection) -> Callable[[float], bool] | None:
    """A function that waits up to `seconds` for something to read; None if unsupported.

    `drain_events(timeout=...)` sets and resets the socket's timeout around every frame it
    reads (two `fcntl` system calls per frame, 21 % of the relay's samples draining a
    backlog). Waiting here first, and then draining without a timeout, avoids that; what
    py-amqp has already read (its `_read_buffer`) counts as available.
    """
    transport = _tcp_transport(conn)
    if transport is None:
        return None
    sock = transport.sock

    def wait(seconds: float) -> bool:
        if transport._read_buffer:
            return True
        readable, _, _ = select.select([sock], [], [], seconds)
        return bool(readable)

    return wait


def _tcp_transport(conn: Connection) -> Any:
    transport = getattr(conn.connection, "transport", None)
    if type(transport).__name__ != "TCPTransport":
        return None
    if not all(hasattr(transport, name) for name in ("_quick_recv", "_read_buffer", "sock")):
        return None
    return transport
