"""RaceWeb as a spectator meets it: `manage.py serve` in embedded mode, in a subprocess.

Its own SQLite file, its own port, a race running (simulated in the process), and a way to
restart the server under the open pages. Used by the live browser tests and the browser
benchmark.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from harness.ports import free_port
from harness.processes import ROOT, python_command, run_python
from harness.stack import http_status
from harness.waiting import WaitTimeout, wait_until

START_TIMEOUT_S = 120.0

# Runs in a subprocess with the server's settings: a race with `count` athletes, started.
CREATE_RACE = """
import sys, django
django.setup()
from django.conf import settings
from races.organizer import lifecycle
from races.organizer.course_import import create_race
from races.organizer.demo import generate_start_list
slug, gpx, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
compression, tick = float(sys.argv[4]), float(sys.argv[5])
race = create_race(
    slug.replace("-", " ").title(), gpx, (settings.DEMO_GPX_DIR / gpx).read_bytes(),
    generate_start_list(count, seed=11), slug=slug, time_compression=compression,
    tick_seconds=tick, seed=4242,
)
lifecycle.start_race(race)
print(race.pk)
"""


class ServedRaceWeb:
    """One embedded RaceWeb server process; `stop()` ends it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "serve.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workdir / 'raceweb.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "raceweb.settings",
            "DEBUG": "True",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
        }
        self.env.pop("AMQP_URL", None)  # embedded mode: simulation and relay in the server
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.process: subprocess.Popen | None = None
        self._python(["manage.py", "migrate", "--verbosity", "0"])

    def _python(self, args: list[str]) -> str:
        return run_python(args, self.env).stdout

    def add_running_race(
        self,
        slug: str,
        athletes: int,
        gpx: str = "trailrun-vtr-classic-2019.gpx",
        time_compression: float = 60.0,
        tick_seconds: float = 5.0,
    ) -> None:
        self._python(
            ["-c", CREATE_RACE, slug, gpx, str(athletes), str(time_compression), str(tick_seconds)]
        )

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            python_command("manage.py", "serve", "--port", str(self.port)),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()}")
            return self._answers()

        try:
            wait_until(answers, START_TIMEOUT_S, "the server to answer", poll_s=0.1)
        except WaitTimeout:
            self.stop()  # never leave a server behind
            raise RuntimeError(
                f"the server did not answer in {START_TIMEOUT_S}s:\n{self.log()}"
            ) from None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _answers(self) -> bool:
        return http_status(self.url + "/healthz", timeout=2) == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:] if self.log_path.exists() else ""
