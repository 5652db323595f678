"""The RaceWeb processes of a distributed run: daphne web, relay, Celery worker and beat.

Each is started as production starts it (docs/ARCHITECTURE.md, "Processes"), configured
only by the environment it is given, and each start returns once the process is ready
(web: `/healthz` answers; relay: connected to RabbitMQ; worker: Celery says ready; beat:
started) or fails at once with its log when the process exits first.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

from harness.ports import free_port
from harness.processes import Processes, python_command
from harness.waiting import wait_until

START_TIMEOUT_S = 90.0
DAPHNE_WEBSOCKET_TIMEOUT_S = 604800  # as in production: daphne's default closes after 24 h


def http_status(url: str, timeout: float = 5.0) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def daphne_command(
    port: int, *, websocket_timeout_s: int = DAPHNE_WEBSOCKET_TIMEOUT_S, quiet: bool = False
) -> list[str]:
    verbosity = ["-v", "0"] if quiet else []
    return python_command(
        "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *verbosity,
        "--websocket_timeout", str(websocket_timeout_s), "raceweb.asgi:application",
    )  # fmt: skip


class RaceWebProcesses(Processes):
    """RaceWeb's processes of one run; `env` holds the run's settings (AMQP_URL, ...)."""

    def __init__(self, log_dir, env: dict[str, str] | None = None) -> None:
        super().__init__(log_dir, env)
        self.web_ports: dict[str, int] = {}

    def ready(
        self,
        name: str,
        condition: Callable[[], object],
        what: str,
        within_s: float = START_TIMEOUT_S,
    ) -> object:
        """Wait for `condition`; fail at once, with the log, when `name` exits first."""

        def check() -> object:
            if not self.alive(name):
                raise RuntimeError(f"{name} exited:\n{self.fresh_log(name)[-6000:]}")
            return condition()

        return wait_until(check, within_s, f"{name} {what}")

    def web(
        self,
        name: str = "web",
        *,
        env: dict[str, str] | None = None,
        wait: bool = True,
        websocket_timeout_s: int = DAPHNE_WEBSOCKET_TIMEOUT_S,
        quiet: bool = False,
    ) -> str:
        """A daphne process; the same name always gets the same port (a restart). Returns
        its base URL, once `/healthz` answers unless `wait` is false (see `wait_web`)."""
        port = self.web_ports.setdefault(name, free_port())
        command = daphne_command(port, websocket_timeout_s=websocket_timeout_s, quiet=quiet)
        self.start(name, command, env)
        if wait:
            self.wait_web(name)
        return self.base_url(name)

    def base_url(self, name: str = "web") -> str:
        return f"http://127.0.0.1:{self.web_ports[name]}"

    def wait_web(self, name: str = "web", within_s: float = START_TIMEOUT_S) -> None:
        health = f"{self.base_url(name)}/healthz"
        self.ready(name, lambda: http_status(health, 2) == 200, "to serve", within_s)

    def relay(
        self, name: str = "relay", *, env: dict[str, str] | None = None, wait: bool = True
    ) -> subprocess.Popen:
        """A `manage.py relay`; returns once it logged its connection (needs LOG_LEVEL
        INFO) unless `wait` is false."""
        process = self.python(name, ["manage.py", "relay"], env)
        if wait:
            self.ready(
                name, lambda: "relay connected to RabbitMQ" in self.fresh_log(name), "to connect"
            )
        return process

    def worker(
        self,
        name: str = "worker",
        *,
        env: dict[str, str] | None = None,
        concurrency: int | None = None,
        heartbeat: bool = True,
    ) -> subprocess.Popen:
        """A Celery simulation worker on the queue SIMULATION_QUEUE names (set it in the
        environment); returns once Celery says it is ready."""
        queue = (self.env if env is None else env)["SIMULATION_QUEUE"]
        args = ["-m", "celery", "-A", "raceweb", "worker", "-Q", queue]
        if concurrency is not None:
            args += ["-c", str(concurrency)]
        args += [
            "--prefetch-multiplier",
            "1",
            "-n",
            f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}@%h",
        ]
        args += ["--without-gossip", "--without-mingle", "-l", "INFO"]
        if not heartbeat:
            args.append("--without-heartbeat")
        process = self.python(name, args, env)
        self.ready(name, lambda: " ready." in self.fresh_log(name), "to be ready")
        return process

    def beat(self, name: str = "beat", *, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Celery beat (the watchdog), its schedule file next to its log."""
        schedule = self.log_dir / f"{name}-schedule"
        args = ["-m", "celery", "-A", "raceweb", "beat", "-s", str(schedule), "-l", "INFO"]
        process = self.python(name, args, env)
        self.ready(name, lambda: "beat: Starting" in self.fresh_log(name), "to start")
        return process
