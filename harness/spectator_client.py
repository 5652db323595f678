"""The spectator client of the tests: a `websockets` client that keeps every message.

`Spectator` opens one socket (from a chosen loopback address when asked: 127.0.0.0/8 is
all ours, so per-address limits count only one test's sockets) and records what arrives;
`ResumingSpectator` behaves like the race page, reconnecting with backoff and jitter and
asking `?resume=<last frame>`; `consistent_frames` lists protocol violations in what a
spectator received. (The benchmark's thousands of sockets per process use the leaner
sans-I/O client in bench/spectators.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time


class Spectator:
    """A websockets client that keeps every message it receives, in order."""

    def __init__(self, url: str, address: str | None = None) -> None:
        self.url = url
        self.address = address
        self.messages: list[dict] = []
        self.close_code: int | None = None
        self._task: asyncio.Task | None = None
        self._socket = None

    async def open(self) -> Spectator:
        from websockets.asyncio.client import connect

        local = {"local_addr": (self.address, 0)} if self.address else {}
        self._socket = await connect(self.url, open_timeout=10, max_size=None, **local)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for text in self._socket:
                self.messages.append(json.loads(text))
        except ConnectionClosed:
            pass
        self.close_code = self._socket.close_code

    async def send(self, text: str) -> None:
        await self._socket.send(text)

    def pause_reading(self) -> None:
        """Stop reading the socket: the server's kernel buffer for it fills up."""
        self._socket.transport.pause_reading()

    def resume_reading(self) -> None:
        self._socket.transport.resume_reading()

    async def close(self) -> None:
        await self._socket.close()
        if self._task is not None:
            await self._task

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m.get("type") == kind]

    def frames(self) -> list[int]:
        """Frame numbers of everything received that carries one, in arrival order."""
        return [m["frame"] for m in self.messages if "frame" in m]


class ResumingSpectator:
    """A protocol-level client that behaves like the race page: on a lost connection it
    reconnects with exponential backoff and jitter, asking `?resume=<last frame>`.

    `messages` keeps everything received, in order, across connections; `connections`
    counts successful opens; `attempts` every try (failed ones too).
    """

    def __init__(self, url: str, first_delay_s: float = 0.1, max_delay_s: float = 2.0) -> None:
        self.url = url
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s
        self.messages: list[dict] = []
        self.connections = 0
        self.attempts: list[float] = []
        self.close_codes: list[int | None] = []
        self._task: asyncio.Task | None = None
        self._socket = None
        self._closing = False

    def last_frame(self) -> int | None:
        frames = self.frames()
        return frames[-1] if frames else None

    def frames(self) -> list[int]:
        return [m["frame"] for m in self.messages if "frame" in m]

    def start(self) -> ResumingSpectator:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        delay = self.first_delay_s
        while not self._closing:
            last = self.last_frame()
            url = self.url if last is None else f"{self.url}?resume={last}"
            self.attempts.append(time.monotonic())
            try:
                async with connect(url, open_timeout=5, max_size=None) as socket:
                    self._socket = socket
                    self.connections += 1
                    delay = self.first_delay_s
                    try:
                        async for text in socket:
                            self.messages.append(json.loads(text))
                    except ConnectionClosed:
                        pass
                    self.close_codes.append(socket.close_code)
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
                pass
            self._socket = None
            if self._closing:
                return
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.max_delay_s)

    async def close(self) -> None:
        self._closing = True
        if self._socket is not None:
            await self._socket.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def consistent_frames(messages: list[dict]) -> list[str]:
    """Protocol violations in a spectator's message stream (empty list when none).

    Promise: every `update` is the frame after the previous one; after a gap the client
    gets a `snapshot` whose frame is not older than what it had.
    """
    problems, previous = [], None
    for index, message in enumerate(messages):
        kind, frame = message.get("type"), message.get("frame")
        if frame is None:
            continue
        if kind == "update" and previous is not None and frame != previous + 1:
            problems.append(f"message {index}: update {frame} after frame {previous}")
        if kind == "snapshot" and previous is not None and frame < previous:
            problems.append(f"message {index}: snapshot {frame} older than frame {previous}")
        previous = frame
    return problems
