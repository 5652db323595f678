"""Real RaceWeb processes for integration tests: daphne web processes and relays.

They run in distributed mode against a real RabbitMQ and the test database of the
running test (use them from `transaction=True` tests, so the rows are committed). Each
process logs to a file in the test's tmp_path; the files are printed when a test fails.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.db import connection

from tests.private_rabbitmq import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


def database_url() -> str:
    """The test database of this test run, as a DATABASE_URL for another process."""
    settings = connection.settings_dict
    if "sqlite" in settings["ENGINE"]:
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


async def async_wait_for(condition: Callable[[], object], within_s: float, what: str) -> object:
    """`wait_for` in async code; `condition` may be a coroutine function (a DB query)."""
    deadline = time.monotonic() + within_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(0.05)


class Processes:
    """Start RaceWeb processes; `stop()` ends them all (SIGTERM, then SIGKILL)."""

    def __init__(self, amqp_url: str, log_dir: Path, **env: str) -> None:
        self.env = {
            **os.environ,
            "AMQP_URL": amqp_url,
            "DATABASE_URL": database_url(),
            "DEBUG": "True",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "METRICS_PORT": "0",  # any free port: several relays run on this one host
            **env,
        }
        self.env.pop("CI", None)  # settings only; the test decides what CI means
        self.log_dir = log_dir
        self.running: list[tuple[str, subprocess.Popen]] = []

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((name, process))
        return process

    def web(self, name: str = "web") -> str:
        """A daphne process; returns its base URL once /healthz answers."""
        port = free_port()
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

    def relay(self, name: str = "relay") -> subprocess.Popen:
        """A `manage.py relay`; returns once it says it is connected to RabbitMQ."""
        process = self._spawn(name, [sys.executable, "manage.py", "relay"])
        wait_for(
            lambda: b"relay connected to RabbitMQ" in self.log(name).encode(),
            START_TIMEOUT_S,
            f"{name} to connect",
        )
        return process

    def worker(self, name: str = "worker") -> subprocess.Popen:
        """A Celery simulation worker on the queue SIMULATION_QUEUE names (set it in the
        environment); returns once Celery says it is ready."""
        process = self._spawn(
            name,
            [
                sys.executable, "-m", "celery", "-A", "raceweb", "worker",
                "-Q", self.env["SIMULATION_QUEUE"], "-c", "2", "--prefetch-multiplier", "1",
                "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "-l", "INFO",
            ],
        )  # fmt: skip
        wait_for(lambda: " ready." in self.log(name), START_TIMEOUT_S, f"{name} to be ready")
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"===== {name}\n{self.log(name)[-6000:]}" for name, _ in self.running)

    def kill(self, process: subprocess.Popen) -> None:
        process.kill()
        process.wait(timeout=10)

    def stop(self) -> None:
        for _, process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Spectator:
    """A websockets client that keeps every message it receives, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict] = []
        self.close_code: int | None = None
        self._task: asyncio.Task | None = None
        self._socket = None

    async def open(self) -> Spectator:
        from websockets.asyncio.client import connect

        self._socket = await connect(self.url, open_timeout=10, max_size=None)
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
