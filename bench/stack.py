"""The distributed RaceWeb stack of a benchmark run, on this machine.

Real parts: RabbitMQ (the one on 127.0.0.1:5672), PostgreSQL (a database of the bench's
own), N daphne processes and the relay, configured only through environment variables
(docs/ARCHITECTURE.md), exactly as in production except ``DEBUG`` (the local broker's
``guest`` account is refused when it is off). Races get unique slugs (``bench-<hex>``);
``close()`` deletes their rows, exchanges and queues.

This module runs Django in the harness process (``setup_django``) only to create, start
and stop races through ``races.organizer.lifecycle``, like the admin does.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from harness.ports import free_port, listening
from harness.processes import ROOT, python_command, run_python
from harness.stack import RaceWebProcesses
from harness.waiting import wait_until
from races import wire

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/raceweb_bench"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
LONG_COURSE = ROOT / "samples" / "gpx" / "ultra-brixen-course-no-times-bom.gpx"


class StackError(RuntimeError):
    """A part of the stack did not come up; the message says which and where its log is."""


def service_reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    return listening(parts.port or default_port, parts.hostname or "127.0.0.1")


def stack_env(database_url: str, amqp_url: str, frames_per_second: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="raceweb.settings",
        DATABASE_URL=database_url,
        AMQP_URL=amqp_url,
        FRAMES_PER_SECOND=str(frames_per_second),
        DEBUG="True",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        METRICS_PORT="0",
        PYTHONUNBUFFERED="1",
        # Every simulated spectator comes from 127.0.0.1: no per-address socket limit.
        WS_MAX_CONNECTIONS_PER_IP="0",
    )
    return env


def ensure_database(database_url: str) -> None:
    """Create the bench's PostgreSQL database when it does not exist yet."""
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(env: dict[str, str]) -> None:
    run_python(["manage.py", "migrate", "--verbosity", "0"], env)


def vacuum(database_url: str) -> None:
    """VACUUM what earlier runs left: each run deletes its races at the end, and their rows
    stay dead until a vacuum. On a server without autovacuum (this development machine's)
    the bench database had 1.3 million dead positions (322 MB) after a day of runs, and
    every run wrote its frames into the bloated tables."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) races_position, races_liveathlete, races_liverace")


def setup_django(env: dict[str, str]) -> None:
    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "AMQP_URL", "DEBUG", "LOG_LEVEL"):
        os.environ[key] = env[key]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class Stack:
    """Web processes, relay and races of one run."""

    def __init__(
        self,
        processes: RaceWebProcesses,
        *,
        database_url: str,
        amqp_url: str,
        web_procs: int,
        web_server: str = "daphne",
    ) -> None:
        self.processes = processes
        self.web_server = web_server
        self.database_url = database_url
        self.amqp_url = amqp_url
        self.web_procs = web_procs
        self.ports = [free_port() for _ in range(web_procs)]
        for i, port in enumerate(self.ports):
            processes.web_ports[f"web{i + 1}"] = port
        self.bare_port = free_port()
        self.frames_per_second = 4.0
        self.races: list = []

    @property
    def env(self) -> dict[str, str]:
        return stack_env(self.database_url, self.amqp_url, self.frames_per_second)

    def prepare(self) -> None:
        ensure_database(self.database_url)
        migrate(self.env)
        vacuum(self.database_url)
        setup_django(self.env)

    # ---- processes ---------------------------------------------------------------------

    def start_web(self) -> None:
        """daphne as in production; uvicorn only to compare transports (not a dependency).
        All start at once, then each is waited for until `/healthz` answers."""
        names = [f"web{i + 1}" for i in range(self.web_procs)]
        for name, port in zip(names, self.ports, strict=True):
            if self.web_server == "uvicorn":
                args = ["-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
                args += ["--ws", "websockets-sansio", "--log-level", "warning", "--no-access-log"]
                self.processes.start(
                    name, python_command(*args, "raceweb.asgi:application"), self.env
                )
            else:
                self.processes.web(
                    name, env=self.env, wait=False, websocket_timeout_s=86400, quiet=True
                )
        for name in names:
            self.processes.wait_web(name, within_s=60)

    def restart_web(self) -> None:
        """Fresh web processes: memory measured per connection starts from a clean heap."""
        for i in range(self.web_procs):
            self.processes.stop(f"web{i + 1}")
        self.start_web()

    def start_relay(self, frames_per_second: float) -> None:
        self.processes.stop("relay")
        self.frames_per_second = frames_per_second
        self.processes.relay("relay", env=self.env, wait=False)  # see wait_relay_consuming

    def stop_relay(self) -> None:
        self.processes.stop("relay")

    def web_pids(self) -> dict[str, int]:
        return {
            f"web{i + 1}": self.processes.running[f"web{i + 1}"].pid for i in range(self.web_procs)
        }

    def relay_pid(self) -> int | None:
        process = self.processes.running.get("relay")
        return process.pid if process else None

    def urls(self, slug: str, procs: int | None = None) -> list[str]:
        return [f"ws://127.0.0.1:{p}/ws/races/{slug}/" for p in self.ports[: procs or None]]

    @property
    def bare_url(self) -> str:
        return f"ws://127.0.0.1:{self.bare_port}/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    # ---- races ---------------------------------------------------------------------------

    def create_race(self, athletes: int, tick_seconds: float, compression: float):
        from races.organizer.course_import import create_race
        from races.organizer.demo import generate_start_list

        slug = f"bench-{secrets.token_hex(4)}"
        race = create_race(
            f"Bench {slug}",
            LONG_COURSE.name,
            LONG_COURSE.read_bytes(),
            generate_start_list(athletes, seed=11),
            slug=slug,
            tick_seconds=tick_seconds,
            time_compression=compression,
            seed=11,
        )
        self.races.append(race)
        return race

    def start_race(self, race, *, backdate_s: float = 0.0):
        """Start ``race`` like the admin does, but with the bench's publisher, not Celery."""
        from races.models import Race
        from races.organizer import lifecycle

        hooks = [
            h for h in lifecycle.on_started if getattr(h, "__name__", "") != "start_simulation"
        ]
        saved, lifecycle.on_started[:] = list(lifecycle.on_started), hooks
        try:
            race = lifecycle.start_race(race)
        finally:
            lifecycle.on_started[:] = saved
        if backdate_s:
            started_at = race.started_at - timedelta(seconds=backdate_s)
            Race.objects.filter(pk=race.pk).update(started_at=started_at)
            race.refresh_from_db()
        return race

    def stop_race(self, race) -> None:
        from races.models import Race
        from races.organizer import lifecycle

        race.refresh_from_db()
        if race.status == Race.Status.RUNNING:
            lifecycle.stop_race(race)

    def queue_state(self, race) -> tuple[int, int]:
        """(messages ready, consumers) of the relay's queue of ``race``."""
        from kombu import Connection

        with Connection(self.amqp_url, connect_timeout=5) as conn:
            _, messages, consumers = conn.default_channel.queue_declare(
                wire.relay_queue_name(race.slug), passive=True
            )
        return messages, consumers

    def wait_relay_consuming(self, race, deadline_s: float = 60) -> None:
        def consuming() -> bool:
            if not self.processes.alive("relay"):
                raise StackError(f"relay exited: {self.processes.log_tail('relay')}")
            return self.queue_state(race)[1] >= 1

        wait_until(consuming, deadline_s, f"the relay to consume {race.slug}", poll_s=0.3)

    def stored_positions(self, race) -> int:
        from races.models import Position

        return Position.objects.filter(race_id=race.pk).count()

    def relay_frame(self, race) -> int:
        """The last frame the relay stored (and then sent) for ``race``."""
        from races.models import LiveRace

        return LiveRace.objects.filter(race_id=race.pk).values_list("frame", flat=True).first() or 0

    def close(self) -> None:
        """Delete the run's races: rows, exchanges and relay queues."""
        from kombu import Connection

        if not self.races:
            return
        from races.models import Race

        try:
            with Connection(self.amqp_url, connect_timeout=5) as conn:
                channel = conn.default_channel
                for race in self.races:
                    channel.queue_delete(wire.relay_queue_name(race.slug))
                    channel.exchange_delete(wire.exchange_name(race.slug))
        finally:
            Race.objects.filter(pk__in=[r.pk for r in self.races]).delete()
            self.races.clear()
