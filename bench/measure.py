"""One measurement of the benchmark: spectators on a set of URLs for a window, and the
bare ``websockets`` baseline measured back to back with RaceWeb (``both``).

Every measurement ("phase") starts spectator processes, waits until each socket has its
snapshot, lets ``--warmup`` seconds pass, then counts ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.clients import gather_crowd, read_json_line
from bench.meters import CpuMeter, rss_bytes
from bench.stack import Stack, StackError
from harness.processes import Processes
from harness.waiting import wait_until


@dataclass
class Run:
    args: argparse.Namespace
    processes: Processes
    stack: Stack
    rows: list[dict] = field(default_factory=list)
    extras: dict = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ---- one measurement ---------------------------------------------------------------------


def measure(
    run: Run,
    *,
    scenario: str,
    step: str,
    server: str,
    server_pids: dict[str, int],
    urls: list[str],
    spectators: int,
    race,
    athletes: int,
    offered_positions_per_s: float,
    other_pids: dict[str, int],
    per_process: int | None = None,
    clock: tuple[float, float] | None = None,
    connect_deadline_s: float = 180.0,
    connect_concurrency: int = 50,
    protocol: str = "v1",
) -> dict:
    """Spectators on ``urls`` for one window; ``clock`` = (race start epoch, compression);
    ``protocol`` v2: the spectators ask for raceweb.v2."""
    args = run.args
    label = f"{scenario}-{server}"
    rss_before = sum(rss_bytes(pid) for pid in server_pids.values())
    run.say(f"{scenario} {step} {server}: connecting {spectators} spectators")
    crowd = gather_crowd(
        run.processes,
        label,
        urls=urls,
        spectators=spectators,
        per_process=per_process or args.per_process,
        origin=run.stack.origin,
        started_at=clock[0] if clock else race.started_at.timestamp(),
        compression=clock[1] if clock else race.time_compression,
        env=run.stack.env,
        connect_deadline_s=connect_deadline_s,
        connect_concurrency=connect_concurrency,
        protocol=protocol,
    )
    try:
        start = time.time() + args.warmup
        end = start + args.duration
        crowd.open_window(start, end)
        meter = CpuMeter({**server_pids, **other_pids, **crowd.pids()})
        time.sleep(max(start - time.time(), 0))
        if args.profile:
            profile(run, f"{label}-{step}", {**server_pids, **other_pids}, args.duration)
        meter.begin()
        first_frame = run.stack.relay_frame(race)
        time.sleep(max(end - time.time(), 0))
        usage = meter.end()
        relay_frames = run.stack.relay_frame(race) - first_frame
        rss_after = sum(rss_bytes(pid) for pid in server_pids.values())
        delivery = crowd.results()
    finally:
        crowd.stop()
    row = {"scenario": scenario, "step": step, "server": server, "athletes": athletes}
    row["protocol"] = protocol
    row["web_procs"] = len(server_pids)
    row["offered_positions_per_s"] = offered_positions_per_s
    row["frames_per_second_setting"] = run.stack.frames_per_second
    row.update(delivery.summary())
    # What the relay sent during the window, times the sockets: what could be delivered.
    row["offered_frames_per_s"] = round(relay_frames / args.duration * delivery.connected, 1)
    row["processes"] = [u.__dict__ for u in usage]
    server_usage = [u for u in usage if u.name in server_pids]
    row["server_cpu_percent"] = sum(u.cpu_percent for u in server_usage)
    row["server_rss_mib"] = sum(u.rss_mib for u in server_usage)
    if delivery.frames:
        cpu_s = row["server_cpu_percent"] / 100 * delivery.window_s
        row["server_us_per_frame"] = round(cpu_s / delivery.frames * 1e6, 1)
    relay = [u for u in usage if u.name == "relay"]
    row["relay_cpu_percent"] = relay[0].cpu_percent if relay else None
    if delivery.connected:
        row["rss_kib_per_connection"] = round(
            (rss_after - rss_before) / 1024 / delivery.connected, 1
        )
    run.say(
        f"  {row['connected']} connected, {row['frames_per_s']:,.0f} frames/s, "
        f"p99 {row['p99_ms']} ms, gaps {row['gaps']}, server CPU {row['server_cpu_percent']:.0f}%"
    )
    return row


def profile(run: Run, label: str, pids: dict[str, int], seconds: float) -> None:
    """py-spy samples of each process for the window, as collapsed stacks in the log dir."""
    for name, pid in pids.items():
        slug = "".join(c if c.isalnum() else "-" for c in f"{label}-{name}")
        out = run.processes.log_dir / f"profile-{slug}.txt"
        argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid)]
        argv += ["--duration", str(int(seconds)), "--rate", "200", "--format", "raw"]
        argv += ["--nonblocking", "--output", str(out)]
        run.processes.start(f"py-spy-{slug}", argv, run.stack.env)


def start_loadgen(run: Run, race, rate: float, duration: float = 3600.0) -> subprocess.Popen:
    argv = ["-m", "bench.loadgen", "--slug", race.slug, "--rate", repr(rate)]
    argv += ["--duration", repr(duration)]
    process = run.processes.python("loadgen", argv, run.stack.env, pipe=True)
    before = run.stack.relay_frame(race)

    def frames_flow() -> bool:  # the first frames flow before spectators connect
        if process.poll() is not None:
            raise StackError(f"load generator exited: {run.processes.log_tail('loadgen')}")
        return run.stack.relay_frame(race) > before

    wait_until(frames_flow, 60, "the relay's first frames of the load generator", poll_s=0.1)
    return process


def start_bare(run: Run, upstream: str, *extra: str) -> int:
    argv = ["-m", "bench.bare_server", "--port", str(run.stack.bare_port), "--upstream", upstream]
    argv += ["--origin", run.stack.origin, *extra]
    process = run.processes.python("bare", argv, run.stack.env, pipe=True)
    read_json_line(process, time.monotonic() + 60, "listening")
    return process.pid


def both(
    run: Run,
    *,
    scenario: str,
    step: str,
    race,
    athletes: int,
    offered: float,
    spectators: int,
    web_procs: int,
    per_process: int | None = None,
    connect_deadline_s: float = 180.0,
    connect_concurrency: int = 50,
) -> list[dict]:
    """Bare baseline, then RaceWeb once per protocol of ``--protocols`` (v1 JSON, then
    raceweb.v2; the web processes restarted between them), for the frames the load
    generator drives now."""
    stack = run.stack
    common = dict(
        scenario=scenario,
        step=step,
        spectators=spectators,
        race=race,
        athletes=athletes,
        offered_positions_per_s=offered,
        per_process=per_process,
        connect_deadline_s=connect_deadline_s,
        connect_concurrency=connect_concurrency,
    )
    relay_pid = {"relay": stack.relay_pid(), "loadgen": run.processes.running["loadgen"].pid}
    web = stack.web_pids()
    bare_pid = start_bare(run, stack.urls(race.slug, 1)[0])
    try:
        bare_row = measure(
            run,
            server="bare",
            server_pids={"bare": bare_pid},
            urls=[run.stack.bare_url],
            other_pids={**relay_pid, "web1 (upstream)": web["web1"]},
            **common,
        )
    finally:
        run.processes.stop("bare")
    rows = [bare_row]
    for index, protocol in enumerate(run.args.protocols.split(",")):
        if index:
            # Each protocol on fresh web processes: after 2,000 v1 sockets had been served,
            # the same processes spent 53 instead of 42-45 µs per v2 frame (scenario b,
            # 2026-12-01), which the other protocol's leftovers, not v2, cost.
            stack.restart_web()
        web_pids = dict(list(stack.web_pids().items())[:web_procs])
        web_row = measure(
            run,
            server="raceweb" if protocol == "v1" else f"raceweb-{protocol}",
            server_pids=web_pids,
            urls=stack.urls(race.slug, web_procs),
            other_pids=relay_pid,
            protocol=protocol,
            **common,
        )
        loadgen = run.processes.running["loadgen"]
        if loadgen.poll() is not None:
            raise StackError(f"load generator exited: {run.processes.log_tail('loadgen')}")
        compare_to_bare(web_row, bare_row)
        rows.append(web_row)
    return rows


def compare_to_bare(web_row: dict, bare_row: dict) -> None:
    if bare_row.get("server_us_per_frame") and web_row.get("server_us_per_frame"):
        # Per frame of CPU: robust when the machine is busy and both are throttled.
        bare_us, web_us = bare_row["server_us_per_frame"], web_row["server_us_per_frame"]
        web_row["cpu_ratio_to_bare"] = round(bare_us / web_us, 3)
    if bare_row["frames_per_s"]:
        web_row["ratio_to_bare"] = round(web_row["frames_per_s"] / bare_row["frames_per_s"], 3)
    if bare_row.get("rss_kib_per_connection"):
        web_row["bare_rss_kib_per_connection"] = bare_row["rss_kib_per_connection"]


def live_race(run: Run, athletes: int, tick_seconds: float, compression: float):
    race = run.stack.create_race(athletes, tick_seconds, compression)
    race = run.stack.start_race(race)
    run.stack.wait_relay_consuming(race)
    return race
