"""The whole distributed stack as real processes on a private RabbitMQ node, for the fault
tests: web (daphne), relay, Celery worker and beat, plus spectator clients.

Builds on tests.live_processes (pipeline's process helpers); adds the Celery processes,
processes that can be restarted on the same port, and a spectator that reconnects with
backoff and resumes by frame number the way the race page does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.live_processes import Processes, Spectator, _answers, wait_for
from tests.private_rabbitmq import free_port

START_TIMEOUT_S = 90.0


class FaultStack(Processes):
    """RaceWeb processes against the private node; every one can be killed and restarted."""

    def __init__(self, amqp_url: str, log_dir: Path, **env: str) -> None:
        super().__init__(amqp_url, log_dir, **env)
        self.web_ports: dict[str, int] = {}
        self.env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

    def _spawn_group(self, name: str, command: list[str]) -> subprocess.Popen:
        """Like _spawn, in its own process group (a Celery worker has pool children)."""
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parent.parent,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, process))
        return process

    def web(self, name: str = "web") -> str:
        """A daphne process; the same name always gets the same port (a restart)."""
        port = self.web_ports.setdefault(name, free_port())
        self._spawn(
            name,
            [
                sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                "--websocket_timeout", "604800", "raceweb.asgi:application",
            ],
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/healthz"), START_TIMEOUT_S, f"{name} to serve")
        return base

    def worker(self, name: str = "worker") -> subprocess.Popen:
        process = self._spawn_group(
            name,
            [
                sys.executable, "-m", "celery", "-A", "raceweb", "worker",
                "-Q", self.env["SIMULATION_QUEUE"], "--prefetch-multiplier", "1",
                "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                "-l", "INFO",
            ],
        )  # fmt: skip
        wait_for(lambda: " ready." in self.log(name), START_TIMEOUT_S, f"{name} ready")
        return process

    def beat(self, name: str = "beat") -> subprocess.Popen:
        schedule = self.log_dir / f"{name}-schedule"
        process = self._spawn_group(
            name,
            [
                sys.executable, "-m", "celery", "-A", "raceweb", "beat", "-s", str(schedule),
                "-l", "INFO",
            ],
        )  # fmt: skip
        wait_for(lambda: "beat: Starting" in self.log(name), START_TIMEOUT_S, f"{name} ready")
        return process

    def named(self, name: str) -> subprocess.Popen:
        return next(p for n, p in reversed(self.running) if n == name)

    def alive(self, name: str) -> bool:
        return self.named(name).poll() is None

    def kill_named(self, name: str) -> None:
        """SIGKILL a process and its group (a crash: no shutdown code runs)."""
        process = self.named(name)
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait(10)

    def stop(self) -> None:
        super().stop()
        for _, process in self.running:  # pool children of killed workers, if any
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(process.pid) == process.pid:
                    os.killpg(process.pid, signal.SIGKILL)


class SpectatorFrom(Spectator):
    """A spectator connecting from a given loopback address (127.0.0.0/8 is all ours),
    so per-address limits count only this test's sockets."""

    def __init__(self, url: str, address: str = "127.0.0.1") -> None:
        super().__init__(url)
        self.address = address

    async def open(self) -> SpectatorFrom:
        from websockets.asyncio.client import connect

        self._socket = await connect(
            self.url, open_timeout=10, max_size=None, local_addr=(self.address, 0)
        )
        self._task = asyncio.create_task(self._read())
        return self

    async def send(self, text: str) -> None:
        await self._socket.send(text)


def http_status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


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
        frames = [m["frame"] for m in self.messages if "frame" in m]
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
