"""The benchmark run: scenarios a-e of issue 8, each against RaceWeb and the bare baseline.

``python bench/run.py --help`` for the options; README "Performance" for what the numbers
mean. A step measures the bare ``websockets`` server (fed the same frames by a socket on web
process 1) and then RaceWeb itself, back to back, so their ratio survives a busy machine
(bench/measure.py); the scenarios are in bench/scenarios.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.measure import Run
from bench.meters import raise_open_files_limit
from bench.scenarios import SCENARIOS
from bench.stack import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, Stack, service_reachable
from harness.processes import ROOT
from harness.stack import RaceWebProcesses
from harness.waiting import WaitTimeout

RESULTS = ROOT / "bench" / "results"


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
    parser.add_argument(
        "--protocols",
        default="v1,v2",
        help="spectator protocols measured after the bare server: v1 (JSON), v2 (raceweb.v2)",
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
    with RaceWebProcesses(log_dir) as processes:
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
        except (RuntimeError, WaitTimeout) as error:  # StackError, ClientError, a dead process
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
