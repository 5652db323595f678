"""Child processes of a test or benchmark run: logged to files, always stopped.

Every Python subprocess the harness starts gets its argv from `python_command`, the one
place to change how Python children run (e.g. under coverage). `Processes` starts each
child in its own process group (a Celery worker's pool children go with it), logs it to
`<log_dir>/<name>.log` and, as a context manager, stops every one it started: politely
(SIGTERM) and then firmly (SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_command(*args: str) -> list[str]:
    """The argv that runs `python <args>` as a child of the harness (tests and bench)."""
    return [sys.executable, *args]


def run_python(
    args: Sequence[str], env: dict[str, str], timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run `python <args>` in the repository root to its end; raise with its output on failure."""
    done = subprocess.run(
        python_command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        raise RuntimeError(f"{list(args)[:2]} failed:\n{done.stdout}\n{done.stderr}")
    return done


class Processes:
    """Named child processes; a name started again (a restart) names the new process."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        self.running: dict[str, subprocess.Popen] = {}
        self._started: list[subprocess.Popen] = []
        self._log_starts: dict[str, int] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        pipe: bool = False,
    ) -> subprocess.Popen:
        """Start `argv` in the repository root, output appended to its log (stdout piped
        to the caller instead when `pipe`, for line protocols)."""
        path = self.log_path(name)
        self._log_starts[name] = path.stat().st_size if path.exists() else 0
        with path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=self.env if env is None else env,
                stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else log,
                stderr=log,
                start_new_session=True,
                text=pipe,
                bufsize=1 if pipe else -1,
            )
        self.running[name] = process
        self._started.append(process)
        return process

    def python(
        self, name: str, args: Sequence[str], env: dict[str, str] | None = None, **kwargs
    ) -> subprocess.Popen:
        return self.start(name, python_command(*args), env, **kwargs)

    def named(self, name: str) -> subprocess.Popen:
        return self.running[name]

    def alive(self, name: str) -> bool:
        process = self.running.get(name)
        return process is not None and process.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL a process and its group: a crash, no shutdown code runs."""
        process = self.running[name]
        _signal_group(process, signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None: not running)."""
        process = self.running.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
        _reap(process, timeout)
        return process.returncode

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop everything ever started here, all at once (they shut down in parallel)."""
        for process in self._started:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        for process in self._started:
            _reap(process, timeout)
        self.running.clear()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def fresh_log(self, name: str) -> str:
        """What the latest process of `name` logged (a restart appends to the same file)."""
        return self.log(name)[self._log_starts.get(name, 0) :]

    def log_tail(self, name: str, lines: int = 20) -> str:
        return "\n".join(self.log(name).splitlines()[-lines:])

    def logs(self) -> str:
        """The end of every log, for a failing test's output."""
        names = sorted({p.stem for p in self.log_dir.glob("*.log")})
        return "\n".join(f"===== {name}\n{self.log(name)[-6000:]}" for name in names)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _reap(process: subprocess.Popen, timeout: float) -> None:
    """Wait for `process`; SIGKILL its group when it takes too long or left children."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(10)
    _signal_group(process, signal.SIGKILL)  # pool children of a killed worker, if any
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
