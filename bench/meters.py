"""Child processes of a benchmark run: started in their own process groups, always stopped.

``Processes`` is a context manager: leaving it (normally, on error or on Ctrl-C) stops
every process group it started, politely (SIGTERM) and then firmly (SIGKILL).
``CpuMeter`` turns psutil's CPU times of a set of processes into CPU % over a window.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        pipe: bool = False,
    ) -> subprocess.Popen:
        """Start ``argv`` in the repository root; stderr (and stdout unless piped) to a log."""
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else log,
            stderr=log,
            start_new_session=True,
            text=pipe,
            bufsize=1 if pipe else -1,
        )
        log.close()
        self.running[name] = process
        return process

    def python(self, name: str, args: Sequence[str], env: dict[str, str], **kwargs):
        return self.start(name, [sys.executable, *args], env, **kwargs)

    def stop(self, name: str, timeout: float = 10.0) -> int | None:
        process = self.running.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return process.returncode

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Usage:
    name: str
    cpu_percent: float  # of one core, averaged over the window
    rss_mib: float


class CpuMeter:
    """CPU time used by named processes between ``begin()`` and ``end()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self.processes[name] = psutil.Process(pid)
        self._start: dict[str, float] = {}
        self._began = 0.0

    def begin(self) -> None:
        self._began = time.monotonic()
        self._start = {name: _cpu(p) for name, p in self.processes.items()}

    def end(self) -> list[Usage]:
        elapsed = max(time.monotonic() - self._began, 1e-6)
        usages = []
        for name, process in self.processes.items():
            try:
                cpu = _cpu(process) - self._start.get(name, 0.0)
                rss = process.memory_info().rss / 2**20
            except psutil.Error:
                continue
            usages.append(Usage(name, round(100.0 * cpu / elapsed, 1), round(rss, 1)))
        return usages


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def rss_bytes(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it); returns the new one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
