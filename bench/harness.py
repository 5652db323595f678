"""The benchmark run: scenarios a-e of issue 8, each against RaceWeb and the bare baseline.

``python bench/run.py --help`` for the options; README "Performance" for what the numbers
mean. Every measurement ("phase") starts spectator processes, waits until each socket
has its snapshot, lets ``--warmup`` seconds pass, then counts ``--duration`` seconds.
A step measures the bare ``websockets`` server (fed the same frames by a socket on web
process 1) and then RaceWeb itself, back to back, so their ratio survives a busy machine.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import report
from bench.clients import ClientError, gather_crowd, read_json_line
from bench.processes import ROOT, CpuMeter, Processes, raise_open_files_limit, rss_bytes
from bench.stack import (
    DEFAULT_AMQP_URL,
    DEFAULT_DATABASE_URL,
    Stack,
    StackError,
    service_reachable,
)

RESULTS = ROOT / "bench" / "results"
SIMULATOR_BENCH = ROOT / "bench" / "bench_simulator.py"


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
) -> dict:
    """Spectators on ``urls`` for one window; ``clock`` = (race start epoch, compression)."""
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
    time.sleep(1.0)  # let the first frames flow before spectators connect
    if process.poll() is not None:
        raise StackError(f"load generator exited: {run.processes.log_tail('loadgen')}")
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
    """Bare baseline, then RaceWeb, for the frames the load generator drives now."""
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
    web_pids = dict(list(web.items())[:web_procs])
    web_row = measure(
        run,
        server="raceweb",
        server_pids=web_pids,
        urls=stack.urls(race.slug, web_procs),
        other_pids=relay_pid,
        **common,
    )
    loadgen = run.processes.running["loadgen"]
    if loadgen.poll() is not None:
        raise StackError(f"load generator exited: {run.processes.log_tail('loadgen')}")
    if bare_row.get("server_us_per_frame") and web_row.get("server_us_per_frame"):
        # Per frame of CPU: robust when the machine is busy and both are throttled.
        bare_us, web_us = bare_row["server_us_per_frame"], web_row["server_us_per_frame"]
        web_row["cpu_ratio_to_bare"] = round(bare_us / web_us, 3)
    if bare_row["frames_per_s"]:
        web_row["ratio_to_bare"] = round(web_row["frames_per_s"] / bare_row["frames_per_s"], 3)
    if bare_row.get("rss_kib_per_connection"):
        web_row["bare_rss_kib_per_connection"] = bare_row["rss_kib_per_connection"]
    return [bare_row, web_row]


def live_race(run: Run, athletes: int, tick_seconds: float, compression: float):
    race = run.stack.create_race(athletes, tick_seconds, compression)
    race = run.stack.start_race(race)
    run.stack.wait_relay_consuming(race)
    return race


# ---- scenarios ---------------------------------------------------------------------------


def scenario_a(run: Run) -> None:
    """One web process, 1,000 spectators, frame rate raised step by step."""
    args, stack = run.args, run.stack
    rates = [float(r) for r in args.a_rates.split(",")]
    stack.start_relay(max(rates) * 1.25)
    # 50x race clock, 0.25 s ticks: up to 200 publishes per wall second.
    race = live_race(run, args.a_athletes, tick_seconds=0.25, compression=50.0)
    try:
        for rate in rates:
            start_loadgen(run, race, rate)
            try:
                run.rows += both(
                    run,
                    scenario="a",
                    step=f"{rate:g} frames/s each",
                    race=race,
                    athletes=args.a_athletes,
                    offered=rate * args.a_athletes,
                    spectators=args.a_spectators,
                    web_procs=1,
                )
            finally:
                run.processes.stop("loadgen")
        ceiling = max(rates) * 2
        start_loadgen(run, race, 1.0)  # keeps the relay's race alive; not measured here
        try:
            pid = start_bare(
                run, "synthetic", "--fps", repr(ceiling), "--athletes", str(args.a_athletes)
            )
            try:
                run.rows.append(
                    measure(
                        run,
                        scenario="a",
                        step=f"bare ceiling, synthetic {ceiling:g} frames/s each",
                        server="bare",
                        server_pids={"bare": pid},
                        urls=[run.stack.bare_url],
                        spectators=args.a_spectators,
                        race=race,
                        athletes=args.a_athletes,
                        offered_positions_per_s=0,
                        other_pids={},
                        clock=(0.0, 1.0),  # synthetic frames carry the current time
                    )
                )
                synthetic = run.rows[-1]
                synthetic["server"] = "bare-synthetic"
                synthetic["offered_frames_per_s"] = ceiling * synthetic["connected"]
            finally:
                run.processes.stop("bare")
        finally:
            run.processes.stop("loadgen")
    finally:
        stack.stop_race(race)


def scenario_b(run: Run) -> None:
    """Many athletes at 1 Hz, 2,000 spectators, the production frame rate."""
    args, stack = run.args, run.stack
    stack.restart_web()
    stack.start_relay(args.fps)
    race = live_race(run, args.b_athletes, tick_seconds=1.0, compression=1.0)
    try:
        start_loadgen(run, race, 1.0)
        try:
            run.rows += both(
                run,
                scenario="b",
                step=f"{args.b_athletes} athletes at 1 Hz",
                race=race,
                athletes=args.b_athletes,
                offered=float(args.b_athletes),
                spectators=args.b_spectators,
                web_procs=args.web_procs,
            )
        finally:
            run.processes.stop("loadgen")
    finally:
        stack.stop_race(race)


def scenario_c(run: Run) -> None:
    """10,000 sockets held open on one web process: memory per connection."""
    args, stack = run.args, run.stack
    stack.restart_web()
    stack.start_relay(args.fps)
    race = live_race(run, 10, tick_seconds=5.0, compression=1.0)
    try:
        start_loadgen(run, race, 0.2)  # a frame every 5 s: the sockets are alive, not busy
        try:
            run.rows += both(
                run,
                scenario="c",
                step=f"{args.c_spectators} held open",
                race=race,
                athletes=10,
                offered=2.0,
                spectators=args.c_spectators,
                web_procs=1,
                per_process=math.ceil(args.c_spectators / 8),
                connect_deadline_s=900.0,
                # daphne listens with Twisted's default backlog of 50: connect in waves.
                connect_concurrency=10,
            )
        finally:
            run.processes.stop("loadgen")
    finally:
        stack.stop_race(race)


def scenario_d(run: Run) -> None:
    """Relay throughput: a backlog published while the relay is down, then drained."""
    args, stack = run.args, run.stack
    stack.stop_relay()
    race = stack.create_race(args.d_athletes, tick_seconds=1.0, compression=1.0)
    race = stack.start_race(race, backdate_s=args.d_ticks + 10)
    run.say(f"d: publishing {args.d_athletes} athletes x {args.d_ticks} ticks, relay stopped")
    argv = ["-m", "bench.loadgen", "--slug", race.slug, "--burst-ticks", str(args.d_ticks)]
    process = run.processes.python("loadgen", argv, stack.env, pipe=True)
    published = read_json_line(process, time.monotonic() + 600, "published")
    run.processes.stop("loadgen")
    total = published["published"]
    run.say(f"d: {total:,} positions published ({published['positions_per_s']:,.0f}/s); relay on")
    stack.start_relay(args.fps)
    meter = None
    first_at = first_count = None
    stored = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stored = stack.stored_positions(race)
        if stored and first_at is None:
            first_at, first_count = time.monotonic(), stored
            meter = CpuMeter({"relay": stack.relay_pid()})
            meter.begin()
            if args.profile:
                profile(run, "d-drain", {"relay": stack.relay_pid()}, 20)
        if stored >= total:
            break
        time.sleep(0.1)
    done_at = time.monotonic()
    usage = meter.end() if meter else []
    rate = (stored - (first_count or 0)) / (done_at - first_at) if first_at else 0.0
    run.extras["relay"] = {
        "published": total,
        "stored": stored,
        "publisher_positions_per_s": published["positions_per_s"],
        "positions_per_s": round(rate, 1),
        "drain_s": round(done_at - (first_at or done_at), 2),
        "relay_cpu_percent": usage[0].cpu_percent if usage else 0.0,
        "relay_rss_mib": usage[0].rss_mib if usage else 0.0,
    }
    run.say(f"d: relay stored {stored:,} of {total:,} at {rate:,.0f} positions/s")
    stack.stop_race(race)


def scenario_e(run: Run) -> None:
    """The simulator's own benchmark (issue 3), run as it is."""
    if not SIMULATOR_BENCH.exists():
        run.extras["simulator"] = {"summary": "bench/bench_simulator.py not found", "met": None}
        return
    run.say("e: simulator benchmark (bench/bench_simulator.py)")
    result = subprocess.run(
        [sys.executable, str(SIMULATOR_BENCH), *run.args.e_args.split()],
        cwd=ROOT,
        env=run.stack.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(result.stdout, flush=True)
    run.extras["simulator"] = summarize_simulator(result.stdout, result.returncode)


def summarize_simulator(output: str, returncode: int) -> dict:
    """The simulator bench's rows (athletes, publisher, ..., per core /s) and the verdict.

    The target is judged on the ``rabbitmq`` rows (the real publisher), the slowest size.
    """
    rows = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0].isdigit() and parts[1] in ("null", "rabbitmq"):
            rows.append(
                {
                    "athletes": int(parts[0]),
                    "publisher": parts[1],
                    "positions_per_s_wall": float(parts[4]),
                    "positions_per_s_per_core": float(parts[5]),
                }
            )
    real = [r for r in rows if r["publisher"] == "rabbitmq"]
    if returncode != 0 or not real:
        return {"summary": output.strip()[-500:] or f"exit {returncode}", "met": None}
    slowest = min(real, key=lambda r: r["positions_per_s_per_core"])
    sizes = ", ".join(
        f"{r['athletes']:,} athletes: {r['positions_per_s_per_core']:,.0f}/s per core" for r in real
    )
    return {
        "summary": f"simulator + AmqpPublisher to RabbitMQ, {sizes}",
        "met": slowest["positions_per_s_per_core"] >= 20_000,
        "rows": rows,
    }


def scenario_smoke(run: Run) -> None:
    """Seconds long: the harness works end to end (CI)."""
    run.stack.start_relay(run.args.fps)
    race = live_race(run, args_athletes := run.args.athletes or 5, 1.0, compression=10.0)
    try:
        start_loadgen(run, race, run.args.rate or 2.0)
        try:
            run.rows += both(
                run,
                scenario="smoke",
                step="smoke",
                race=race,
                athletes=args_athletes,
                offered=args_athletes * (run.args.rate or 2.0),
                spectators=run.args.spectators or 20,
                web_procs=run.args.web_procs,
                per_process=10,
            )
        finally:
            run.processes.stop("loadgen")
    finally:
        run.stack.stop_race(race)


def scenario_custom(run: Run) -> None:
    """Exactly the numbers given on the command line."""
    args = run.args
    run.stack.start_relay(args.fps)
    athletes, rate = args.athletes or 100, args.rate or 1.0
    race = live_race(run, athletes, 1.0 / rate, compression=1.0)
    try:
        start_loadgen(run, race, rate)
        try:
            run.rows += both(
                run,
                scenario="custom",
                step=f"{athletes} athletes at {rate:g} Hz",
                race=race,
                athletes=athletes,
                offered=athletes * rate,
                spectators=args.spectators or 100,
                web_procs=args.web_procs,
            )
        finally:
            run.processes.stop("loadgen")
    finally:
        run.stack.stop_race(race)


SCENARIOS = {
    "a": scenario_a,
    "b": scenario_b,
    "c": scenario_c,
    "d": scenario_d,
    "e": scenario_e,
    "smoke": scenario_smoke,
    "custom": scenario_custom,
}


# ---- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="End-to-end benchmark of RaceWeb against a bare websockets server.",
    )
    parser.add_argument(
        "--scenario",
        default="a,b,c,d,e",
        help="comma-separated: a,b,c,d,e (issue 8's targets), custom, smoke",
    )
    parser.add_argument("--smoke", action="store_true", help="seconds long, tiny numbers (CI)")
    parser.add_argument("--athletes", type=int, help="custom/smoke: athletes")
    parser.add_argument("--rate", type=float, help="custom/smoke: positions per athlete per s")
    parser.add_argument("--spectators", type=int, help="custom/smoke: spectators")
    parser.add_argument("--web-procs", type=int, default=2, help="daphne processes")
    parser.add_argument(
        "--web-server",
        choices=["daphne", "uvicorn"],
        default="daphne",
        help="daphne (production); uvicorn only to compare transports, if installed",
    )
    parser.add_argument("--fps", type=float, default=4.0, help="relay frames/s per race")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--per-process", type=int, default=250, help="sockets per client")
    parser.add_argument("--a-rates", default="20,40,80,160", help="a: frames/s per spectator")
    parser.add_argument("--a-athletes", type=int, default=2)
    parser.add_argument("--a-spectators", type=int, default=1000)
    parser.add_argument("--b-athletes", type=int, default=1000)
    parser.add_argument("--b-spectators", type=int, default=2000)
    parser.add_argument("--c-spectators", type=int, default=10_000)
    parser.add_argument("--d-athletes", type=int, default=1000)
    parser.add_argument("--d-ticks", type=int, default=100)
    parser.add_argument("--e-args", default="", help="arguments for bench_simulator.py")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--json", type=Path, help="where to write the JSON results")
    parser.add_argument("--profile", action="store_true", help="py-spy the servers and relay")
    args = parser.parse_args(argv)
    if args.smoke:
        args.scenario = "smoke"
        args.duration, args.warmup, args.web_procs = min(args.duration, 3.0), 1.0, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    for name, url, port in (
        ("RabbitMQ", args.amqp_url, 5672),
        ("PostgreSQL", args.database_url, 5432),
    ):
        if not service_reachable(url, port):
            print(f"{name} is not reachable at {url}", file=sys.stderr)
            return 2
    open_files = raise_open_files_limit()
    conditions = report.conditions() | {"open_files_limit": open_files}
    log_dir = Path(tempfile.mkdtemp(prefix="raceweb-bench-"))
    print(f"logs in {log_dir}; load average {conditions['load_average_at_start']}", flush=True)
    with Processes(log_dir) as processes:
        stack = Stack(
            processes,
            database_url=args.database_url,
            amqp_url=args.amqp_url,
            web_procs=args.web_procs,
            web_server=args.web_server,
        )
        run = Run(args, processes, stack)
        try:
            stack.prepare()
            if any(n != "e" for n in names):
                stack.start_web()
            for name in names:
                SCENARIOS[name](run)
        except (StackError, ClientError) as error:
            print(f"benchmark failed: {error}\nlogs: {log_dir}", file=sys.stderr)
            return 1
        finally:
            processes.stop_all()
            stack.close()
    payload = {
        "conditions": conditions,
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "rows": run.rows,
        "extras": run.extras,
        "targets": report.verdicts(run.rows, run.extras),
    }
    print()
    print(report.table(run.rows))
    print()
    print(report.process_lines(run.rows))
    for verdict in payload["targets"]:
        mark = {True: "MET", False: "NOT MET", None: "?"}[verdict["met"]]
        print(f"[{mark}] {verdict['target']}: {verdict['measured']}")
    path = args.json or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report.write_json(path, payload)
    print(f"\nJSON: {path}")
    return 0
