"""What the processes of a benchmark run cost: CPU and memory (psutil).

``CpuMeter`` turns psutil's CPU times of a set of processes into CPU % over a window.
The processes themselves are started and stopped by ``harness.processes``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import psutil


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
