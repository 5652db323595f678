"""Running spectator processes for one measurement and adding up what they saw."""

from __future__ import annotations

import json
import math
import select
import subprocess
import time
from dataclasses import dataclass, field

from bench.latency import Histogram
from harness.processes import Processes


class ClientError(RuntimeError):
    pass


def read_json_line(process: subprocess.Popen, deadline: float, want: str) -> dict:
    """The next JSON line of ``process`` holding key ``want`` (other lines are skipped)."""
    assert process.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ClientError(f"no {want!r} line from pid {process.pid} in time")
        readable, _, _ = select.select([process.stdout], [], [], min(remaining, 1.0))
        if not readable:
            if process.poll() is not None:
                raise ClientError(f"pid {process.pid} exited ({process.returncode})")
            continue
        line = process.stdout.readline()
        if not line:
            raise ClientError(f"pid {process.pid} closed its output")
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if want in data:
            return data


@dataclass
class Delivery:
    """What the spectators of one measurement received, all processes together."""

    spectators: int = 0
    connected: int = 0
    window_s: float = 0.0
    frames: int = 0
    positions: int = 0
    bytes: int = 0
    snapshot_bytes: int = 0
    snapshots: int = 0
    gaps: int = 0
    repeats: int = 0
    mismatches: int = 0
    unmeasured_frames: int = 0  # v2 frames a client process could not place (while connecting)
    connect_s: float = 0.0
    connect_errors: dict[str, int] = field(default_factory=dict)
    early_closes: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)

    def add(self, result: dict, ready: dict) -> None:
        self.connected += result["connected"]
        self.window_s = max(self.window_s, result["window_s"])
        for key in (
            "frames",
            "positions",
            "bytes",
            "snapshots",
            "gaps",
            "repeats",
            "mismatches",
            "unmeasured_frames",
        ):
            setattr(self, key, getattr(self, key) + result[key])
        self.snapshot_bytes = max(self.snapshot_bytes, result.get("snapshot_bytes", 0))
        self.connect_s = max(self.connect_s, ready.get("connect_s", 0.0))
        for source, target in (
            (result["connect_errors"], self.connect_errors),
            (result["early_closes"], self.early_closes),
        ):
            for key, count in source.items():
                target[key] = target.get(key, 0) + count
        self.latency.merge(Histogram.from_json(result["latency"]))

    def summary(self) -> dict:
        window = self.window_s or 1.0
        return {
            "spectators": self.spectators,
            "connected": self.connected,
            "connect_s": self.connect_s,
            "window_s": round(self.window_s, 2),
            "frames": self.frames,
            "frames_per_s": round(self.frames / window, 1),
            "positions": self.positions,
            "positions_per_s": round(self.positions / window, 1),
            "bytes_per_frame": round(self.bytes / self.frames) if self.frames else 0,
            "bytes_per_position": round(self.bytes / self.positions, 1) if self.positions else 0,
            "kbit_per_s_per_spectator": (
                round(self.bytes * 8 / window / self.connected / 1000, 1) if self.connected else 0
            ),
            "egress_mbit_per_s": round(self.bytes * 8 / window / 1e6, 2),
            "snapshot_kib": round(self.snapshot_bytes / 1024, 1),
            "p50_ms": self.latency.percentile(0.50),
            "p95_ms": self.latency.percentile(0.95),
            "p99_ms": self.latency.percentile(0.99),
            "max_ms": self.latency.percentile(1.0),
            "gaps": self.gaps,
            "repeats": self.repeats,
            "resyncs": max(self.snapshots - self.connected, 0),
            "mismatches": self.mismatches,
            "unmeasured_frames": self.unmeasured_frames,
            "connect_errors": self.connect_errors,
            "early_closes": self.early_closes,
        }


@dataclass
class Crowd:
    """Spectator processes connected and waiting for their measurement window."""

    processes: Processes
    names: list[str]
    readies: list[dict]
    spectators: int
    end: float = 0.0

    def pids(self) -> dict[str, int]:
        return {name: self.processes.running[name].pid for name in self.names}

    def open_window(self, start: float, end: float) -> None:
        """Count what arrives between the wall-clock epochs ``start`` and ``end``."""
        self.end = end
        for name in self.names:
            stdin = self.processes.running[name].stdin
            assert stdin is not None
            stdin.write(f"window {start} {end}\n")
            stdin.flush()

    def results(self, deadline_s: float = 60.0) -> Delivery:
        """Wait for the window to close and every process to report."""
        delivery = Delivery(spectators=self.spectators)
        deadline = time.monotonic() + max(self.end - time.time(), 0) + deadline_s
        for name, ready in zip(self.names, self.readies, strict=True):
            result = read_json_line(self.processes.running[name], deadline, "frames")
            delivery.add(result, ready)
        return delivery

    def stop(self) -> None:
        for name in self.names:
            self.processes.stop(name)


def gather_crowd(
    processes: Processes,
    label: str,
    *,
    urls: list[str],
    spectators: int,
    per_process: int,
    origin: str,
    started_at: float,
    compression: float,
    env: dict[str, str],
    connect_deadline_s: float = 180.0,
    connect_concurrency: int = 50,
    protocol: str = "v1",
) -> Crowd:
    """Start the spectator processes and wait until every socket has its snapshot."""
    count = max(1, math.ceil(spectators / per_process))
    names = []
    for i in range(count):
        share = spectators // count + (1 if i < spectators % count else 0)
        name = f"{label}-spectators{i + 1}"
        argv = ["-m", "bench.spectators", "--connections", str(share), "--origin", origin]
        argv += ["--started-at", repr(started_at), "--compression", repr(compression)]
        argv += ["--label", name, "--connect-concurrency", str(connect_concurrency)]
        argv += ["--open-timeout", str(min(connect_deadline_s, 300.0))]
        argv += ["--protocol", protocol]
        # Rotate the URL list so every web process gets its share from every client.
        for j in range(len(urls)):
            argv += ["--url", urls[(i + j) % len(urls)]]
        processes.python(name, argv, env, pipe=True)
        names.append(name)
    deadline = time.monotonic() + connect_deadline_s
    crowd = Crowd(processes, names, [], spectators)
    try:
        for name in names:
            crowd.readies.append(read_json_line(processes.running[name], deadline, "ready"))
    except BaseException:
        crowd.stop()
        raise
    return crowd
