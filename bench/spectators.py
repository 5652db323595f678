"""A process of benchmark spectators: many WebSocket connections on one asyncio loop.

Run by the harness (``python -m bench.spectators --url ... --connections N``). It connects
every socket (each first receives a snapshot), prints one JSON line ``{"ready": ...}``,
then waits for ``window START END`` on stdin (wall-clock epochs). Frames received inside
the window are counted and every position in them gets a latency: receipt time minus the
wall time of its event (``time`` mapped back through the race clock); the receipt time
is taken as the bytes arrive, the frames are read after END (`ReadLater`). Frame numbers
are checked on every connection all along: a number that skips is a gap. At END it closes
the sockets and prints one JSON line with the totals and the latency histogram.

`--protocol v2` asks for `raceweb.v2`: the process reads each binary frame once, in
order, against the race's times as it holds them (`CompactTimes`), for the positions' times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from bench.frames import FrameCache, frame_number, frame_type
from bench.latency import Histogram
from races import wire_v2


@dataclass
class Window:
    start: float = float("inf")
    end: float = float("inf")


@dataclass
class Totals:
    frames: int = 0
    positions: int = 0
    bytes: int = 0
    snapshot_bytes: int = 0  # the largest snapshot received
    snapshots: int = 0
    gaps: int = 0  # frames missing between two consecutive receipts
    repeats: int = 0  # frames received twice or out of order
    mismatches: int = 0  # frames whose quick scan disagreed with json.loads
    unmeasured_frames: int = 0  # v2 frames older than this process's decoded state
    early_closes: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)


class CompactTimes:
    """`raceweb.v2` frames of this process's race, each read once and in order (every
    socket gets the same frame N, after N - 1) for the event times of its positions
    (`wire_v2.update_times`: the full decode cost a process 10 ms a frame, on the cores
    of the server being measured)."""

    def __init__(self, totals: Totals, size: int = 512) -> None:
        self.totals = totals
        self.size = size
        self.held: dict[int, int | None] = {}  # athlete id -> event time (ms)
        self.frame: int | None = None
        self._times: OrderedDict[int, list[tuple[float, int]]] = OrderedDict()

    def snapshot(self, number: int, data: bytes) -> None:
        if self.frame is None or number > self.frame:
            athletes = wire_v2.decode_snapshot(data)["athletes"]
            self.held = {a["id"]: wire_v2.codec.time_ms(a.get("time")) for a in athletes}
            self.frame = number

    def times(self, number: int, data: bytes) -> list[tuple[float, int]] | None:
        """The event times of update ``number``; [] when this process cannot read it (its
        sockets' snapshots were not all taken at one frame while they connected, so one
        socket may still get a frame older than what another socket's snapshot holds);
        None when the frame does not decode: a real mismatch."""
        found = self._times.get(number)
        if found is None:
            if self.frame is None or number != self.frame + 1:
                self.totals.unmeasured_frames += 1
                return []
            try:
                stamps = wire_v2.update_times(data, self.held)
            except wire_v2.DecodeError:
                return None
            self.frame = number
            found = [(ms / 1000.0, count) for ms, count in stamps.items()]
            self._times[number] = found
            if len(self._times) > self.size:
                self._times.popitem(last=False)
        return found


class Spectator:
    """One connection's view: the last frame number seen."""

    def __init__(
        self,
        totals: Totals,
        window: Window,
        cache: FrameCache,
        started_at: float,
        compression: float,
        compact: CompactTimes | None = None,
    ) -> None:
        self.totals = totals
        self.cache = cache
        self.compact = compact
        self.window = window
        self.started_at = started_at
        self.compression = compression
        self.last_frame: int | None = None
        self.checked = False

    def on_message(self, data: bytes, received: float) -> None:
        if self.compact is not None and data and data[0] & 0x7F in (1, 2):
            self.on_compact(data, received)
            return
        kind = frame_type(data)
        if kind == b"snapshot":
            self.totals.snapshots += 1
            self.totals.snapshot_bytes = max(self.totals.snapshot_bytes, len(data))
            self.last_frame = frame_number(data)
            return
        if kind != b"update":
            return
        self.on_update(frame_number(data), data, received, None)

    def on_compact(self, data: bytes, received: float) -> None:
        assert self.compact is not None
        kind, number = wire_v2.message_kind(data)
        if kind == wire_v2.SNAPSHOT:
            self.totals.snapshots += 1
            self.totals.snapshot_bytes = max(self.totals.snapshot_bytes, len(data))
            self.last_frame = number
            self.compact.snapshot(number, data)
            return
        times = self.compact.times(number, data)  # every frame: the next one builds on it
        if times is None:
            self.totals.mismatches += 1
            times = []
        self.checked = True  # the decode is the check
        self.on_update(number, data, received, times)

    def on_update(
        self, number: int | None, data: bytes, received: float, times: list | None
    ) -> None:
        if number is not None and self.last_frame is not None:
            if number > self.last_frame + 1:
                self.totals.gaps += number - self.last_frame - 1
            elif number <= self.last_frame:
                self.totals.repeats += 1
        if number is not None and (self.last_frame is None or number > self.last_frame):
            self.last_frame = number
        if number is None or not self.window.start <= received <= self.window.end:
            return
        if times is None:
            times = self.cache.times(number, data)
        if not self.checked:
            self.checked = True
            self._check(data, times)
        totals = self.totals
        totals.frames += 1
        totals.bytes += len(data)
        started_at, compression = self.started_at, self.compression
        for event, count in times:
            wall = started_at + (event - started_at) / compression
            totals.latency.add((received - wall) * 1000.0, count)
            totals.positions += count

    def _check(self, data: bytes, times: list[tuple[float, int]]) -> None:
        """Once per connection: the quick scan must agree with a real JSON parse."""
        frame = json.loads(data)
        # Athletes whose rank or gap changed without a new position (others passed them, a
        # retirement) carry no time: they are not positions.
        timed = [a for a in frame.get("athletes", []) if a.get("time")]
        if sum(c for _, c in times) != len(timed) or frame.get("frame") != frame_number(data):
            self.totals.mismatches += 1


class ReadLater:
    """Messages that arrive from the window's start on, read (scanned, decoded, counted)
    once the window is over; each keeps the receipt time taken when its bytes arrived.

    Reading a frame costs a client process far more than receiving it: the event times of
    a 1,000-athlete frame (once per process and frame) and, in v1, a JSON parse of it once
    per connection. Read on arrival, that work held up the process's other sockets, whose
    receipt times then included it, on the cores of the server being measured (py-spy of
    a v2 client process in the design load, 2026-12-01: two thirds of its busy time in
    `update_times`). A frame's bytes are kept once per process, however many sockets got
    them."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.reading_later = False  # from the window's start until `read_all`
        self.messages: list[tuple[Spectator, bytes, float]] = []
        self._kept: dict[tuple[int, bytes], bytes] = {}

    def keep(self, spectator: Spectator, data: bytes, received: float) -> bool:
        """Keep a message for `read_all`; False when it is to be read now."""
        if not self.reading_later:
            if not self.window.start <= received <= self.window.end:
                return False
            self.reading_later = True
        key = (len(data), bytes(data[:64]))
        kept = self._kept.setdefault(key, data)
        self.messages.append((spectator, kept if kept == data else data, received))
        return True

    def read_all(self) -> None:
        """Read the kept messages in the order they came, as if on arrival."""
        messages, self.messages = self.messages, []
        self._kept.clear()
        self.reading_later = False
        for spectator, data, received in messages:
            spectator.on_message(data, received)


class LeanSocket(asyncio.Protocol):
    """One client connection on websockets' sans-I/O protocol.

    The library parses the handshake and the frames and answers pings; skipping its
    asyncio connection layer (a future and a queue per message) halves the client's cost
    per frame, which on a 2-core machine is CPU taken from the server being measured.
    """

    def __init__(
        self,
        url: str,
        origin: str | None,
        totals: Totals,
        spectator: Spectator,
        later: ReadLater,
    ) -> None:
        subprotocols = [Subprotocol(wire_v2.SUBPROTOCOL)] if spectator.compact else None
        self.protocol = ClientProtocol(
            parse_uri(url), origin=origin, subprotocols=subprotocols, max_size=None
        )
        self.totals = totals
        self.spectator = spectator
        self.later = later
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.first_message: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        received = time.time()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._on_frame(event, received)
            elif isinstance(event, Response) and self.protocol.handshake_exc is not None:
                self._finish(self.protocol.handshake_exc)
        self._flush()

    def _on_frame(self, frame: Frame, received: float) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if not frame.fin:
                self.fragments.append(frame.data)
                return
            data = frame.data
            if self.fragments:
                data = b"".join([*self.fragments, data])
                self.fragments.clear()
            if not self.later.keep(self.spectator, data, received):
                self.spectator.on_message(data, received)
            if not self.first_message.done():
                self.first_message.set_result(None)
        elif frame.opcode is Opcode.CLOSE:
            code = self.protocol.close_rcvd.code if self.protocol.close_rcvd else "none"
            self.totals.early_closes[str(code)] += 1

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.protocol.close_expected():
            self.transport.close()

    def _finish(self, exc: BaseException | None) -> None:
        for future in (self.first_message, self.closed):
            if not future.done():
                if exc is not None and future is self.first_message:
                    future.set_exception(exc)
                else:
                    future.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionError("closed before the first message"))

    def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(Exception):
            self.protocol.send_close(1000)
            self._flush()
        self.transport.close()


async def open_all(
    args: argparse.Namespace, totals: Totals, window: Window, later: ReadLater
) -> tuple[list[LeanSocket], Counter[str]]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(args.connect_concurrency)
    errors: Counter[str] = Counter()
    sockets: list[LeanSocket] = []
    cache = FrameCache()
    compact = CompactTimes(totals) if args.protocol == "v2" else None

    async def open_one(index: int) -> None:
        url = args.url[index % len(args.url)]
        target = parse_uri(url)
        spectator = Spectator(totals, window, cache, args.started_at, args.compression, compact)
        async with gate:
            try:
                _, socket = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: LeanSocket(url, args.origin, totals, spectator, later),
                        target.host,
                        target.port,
                    ),
                    timeout=args.open_timeout,
                )
                # The snapshot comes first: wait for it, so "ready" means ready.
                await asyncio.wait_for(socket.first_message, timeout=args.open_timeout)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionError) as exc:
                errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                return
        sockets.append(socket)

    await asyncio.gather(*(open_one(i) for i in range(args.connections)))
    return sockets, errors


async def read_window(deadline: float) -> tuple[float, float] | None:
    loop = asyncio.get_running_loop()
    line = await asyncio.wait_for(
        loop.run_in_executor(None, sys.stdin.readline), timeout=max(deadline - time.time(), 1)
    )
    parts = line.split()
    if len(parts) != 3 or parts[0] != "window":
        return None
    return float(parts[1]), float(parts[2])


async def main(args: argparse.Namespace) -> dict:
    hard_deadline = time.time() + args.max_seconds
    totals, window = Totals(), Window()
    began = time.monotonic()
    later = ReadLater(window)
    sockets, errors = await open_all(args, totals, window, later)
    connect_s = round(time.monotonic() - began, 2)
    ready = {"ready": len(sockets), "failed": sum(errors.values()), "connect_s": connect_s}
    ready["errors"] = dict(errors.most_common(3))
    print(json.dumps(ready), flush=True)
    try:
        span = await read_window(hard_deadline)
    except TimeoutError:
        span = None
    if span is not None:
        window.start, window.end = span
        await asyncio.sleep(max(min(window.end, hard_deadline) - time.time(), 0))
    later.read_all()
    for socket in sockets:
        socket.close()
    await asyncio.wait([s.closed for s in sockets] or [asyncio.sleep(0)], timeout=5)
    later.read_all()  # any that came in the window's last moment
    return {
        "label": args.label,
        "connections": args.connections,
        "connected": len(sockets),
        "connect_errors": dict(errors),
        "early_closes": dict(totals.early_closes),
        "window_s": (window.end - window.start) if span else 0.0,
        "frames": totals.frames,
        "positions": totals.positions,
        "bytes": totals.bytes,
        "snapshot_bytes": totals.snapshot_bytes,
        "snapshots": totals.snapshots,
        "gaps": totals.gaps,
        "repeats": totals.repeats,
        "mismatches": totals.mismatches,
        "unmeasured_frames": totals.unmeasured_frames,
        "latency": totals.latency.to_json(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", required=True, help="repeat to spread")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--origin", default=None, help="Origin header to send")
    parser.add_argument("--started-at", type=float, default=0.0, help="race start, epoch s")
    parser.add_argument("--compression", type=float, default=1.0, help="race time factor")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--open-timeout", type=float, default=60.0)
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="hard stop")
    parser.add_argument("--label", default="")
    parser.add_argument("--protocol", choices=["v1", "v2"], default="v1", help="v2: raceweb.v2")
    return parser.parse_args(argv)


if __name__ == "__main__":
    result = asyncio.run(main(parse_args()))
    print(json.dumps(result), flush=True)
