"""The scenarios of the benchmark (issue 8's a-e, plus smoke and custom), each a function
of a ``Run`` that appends its rows (or extras) to it."""

from __future__ import annotations

import math
import subprocess
import time

from bench.clients import read_json_line
from bench.measure import Run, both, live_race, measure, profile, start_bare, start_loadgen
from bench.meters import CpuMeter
from harness.processes import ROOT, python_command

SIMULATOR_BENCH = ROOT / "bench" / "bench_simulator.py"


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
        python_command(str(SIMULATOR_BENCH), *run.args.e_args.split()),
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
