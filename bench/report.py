"""The benchmark's table, its verdict against the targets, and its JSON file."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import psutil

COLUMNS = [
    ("scenario", "scen", "{}"),
    ("server", "server", "{}"),
    ("web_procs", "procs", "{}"),
    ("athletes", "athl", "{}"),
    ("offered_positions_per_s", "pos/s in", "{:,.0f}"),
    ("connected", "spect", "{:,}"),
    ("offered_frames_per_s", "frames/s in", "{:,.0f}"),
    ("frames_per_s", "frames/s", "{:,.0f}"),
    ("positions_per_s", "pos/s out", "{:,.0f}"),
    ("bytes_per_frame", "B/frame", "{:,}"),
    ("bytes_per_position", "B/pos", "{:.1f}"),
    ("kbit_per_s_per_spectator", "kbit/s/spect", "{:,.0f}"),
    ("egress_mbit_per_s", "egress Mbit/s", "{:,.1f}"),
    ("snapshot_kib", "snap KiB", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p95_ms", "p95 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("gaps", "gaps", "{}"),
    ("resyncs", "resync", "{}"),
    ("server_cpu_percent", "srv CPU%", "{:.0f}"),
    ("server_us_per_frame", "µs/frame", "{:.1f}"),
    ("server_rss_mib", "srv MiB", "{:.0f}"),
    ("relay_cpu_percent", "relay%", "{:.0f}"),
    ("ratio_to_bare", "vs bare", "{:.2f}"),
    ("cpu_ratio_to_bare", "µs vs bare", "{:.2f}"),
]


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or value == "":
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table(rows: list[dict]) -> str:
    """A Markdown table (readable in a terminal and pasteable into the README)."""
    header = [title for _, title, _ in COLUMNS]
    lines = [[_cell(row, key, fmt) for key, _, fmt in COLUMNS] for row in rows]
    # A run of scenarios without rows (d, e) still prints the header.
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        out.append("| " + " | ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) + " |")
    return "\n".join(out)


def process_lines(rows: list[dict]) -> str:
    out = []
    for row in rows:
        usage = ", ".join(
            f"{p['name']} {p['cpu_percent']:.0f}% {p['rss_mib']:.0f} MiB" for p in row["processes"]
        )
        out.append(f"- {row['scenario']} {row['server']} ({row.get('step', '')}): {usage}")
    return "\n".join(out)


def verdicts(rows: list[dict], extras: dict) -> list[dict]:
    """Each target of issue 8, measured or not, met or not."""
    found = []
    a_rows = [r for r in rows if r["scenario"] == "a"]
    if a_rows:
        web = [r for r in a_rows if r["server"] == "raceweb"]
        good = [r for r in web if (r["p99_ms"] or 1e9) < 250 and r["gaps"] == 0]
        best = max(good, key=lambda r: r["frames_per_s"], default=None)
        most = max(web, key=lambda r: r["frames_per_s"], default=None)
        bare = [r for r in a_rows if r["server"].startswith("bare")]
        ceiling = max((r["frames_per_s"] for r in bare), default=0)
        value = best["frames_per_s"] if best else 0
        web_us = [r["server_us_per_frame"] for r in web if r.get("server_us_per_frame")]
        bare_us = [r["server_us_per_frame"] for r in bare if r.get("server_us_per_frame")]
        cpu = (
            f"; CPU per frame {min(web_us):.0f}-{max(web_us):.0f} µs against the bare "
            f"server's {min(bare_us):.0f}-{max(bare_us):.0f} µs"
            if web_us and bare_us
            else ""
        )
        found.append(
            {
                "target": "a: one web process, 1,000 spectators: >= 40,000 frames/s, p99 < 250 ms",
                "measured": f"{value:,.0f} frames/s with p99 < 250 ms; at most "
                f"{most['frames_per_s'] if most else 0:,.0f} frames/s (p99 "
                f"{most['p99_ms'] if most else '-'} ms); bare ceiling in the same run "
                f"{ceiling:,.0f} frames/s{cpu}",
                "met": value >= 40_000,
            }
        )
    for r in rows:
        if r["scenario"] == "b" and r["server"].startswith("raceweb"):
            limit = 1000.0 / r["frames_per_second_setting"] + 100
            found.append(
                {
                    "target": f"b ({r['server']}): 1,000 athletes at 1 Hz, 2,000 spectators: "
                    f"p99 < {limit:.0f} ms, no gap",
                    "measured": f"p99 {r['p99_ms']} ms, {r['gaps']} gaps, {r['resyncs']} resyncs, "
                    f"{r['connected']} connected",
                    "met": (r["p99_ms"] or 1e9) < limit
                    and r["gaps"] == 0
                    and r["resyncs"] == 0
                    and r["connected"] == r["spectators"],
                }
            )
        if r["scenario"] == "c" and r["server"] == "raceweb":
            per = r.get("rss_kib_per_connection")
            found.append(
                {
                    "target": "c: 10,000 spectators on one process, <= 50 KiB RSS each",
                    "measured": f"{r['connected']:,} connected, {per} KiB RSS per connection",
                    "met": per is not None
                    and per <= 50
                    and r["connected"] == r["spectators"] >= 10_000,
                }
            )
    found += compact_protocol_verdicts(rows)
    if "relay" in extras:
        relay = extras["relay"]
        found.append(
            {
                "target": "d: relay >= 10,000 positions/s",
                "measured": f"{relay['positions_per_s']:,.0f} positions/s stored and framed "
                f"({relay['stored']:,} of {relay['published']:,}, relay CPU "
                f"{relay['relay_cpu_percent']:.0f}%)",
                "met": relay["positions_per_s"] >= 10_000 and relay["stored"] == relay["published"],
            }
        )
    if "simulator" in extras:
        sim = extras["simulator"]
        found.append(
            {
                "target": "e: simulator >= 20,000 positions/s per core",
                "measured": sim.get("summary", "see JSON"),
                "met": sim.get("met"),
            }
        )
    return found


def compact_protocol_verdicts(rows: list[dict]) -> list[dict]:
    """Issue 16's byte and CPU targets, from scenario b's `raceweb-v2` row (the page's
    protocol) and, for the CPU, its v1 row of the same run."""
    v2 = next((r for r in rows if r["scenario"] == "b" and r["server"] == "raceweb-v2"), None)
    v1 = next((r for r in rows if r["scenario"] == "b" and r["server"] == "raceweb"), None)
    if v2 is None:
        return []
    found = [
        {
            "target": "b (raceweb-v2): <= 20 bytes per athlete update",
            "measured": f"{v2['bytes_per_position']} B per position delivered",
            "met": 0 < v2["bytes_per_position"] <= 20,
        },
        {
            "target": "b (raceweb-v2): <= 200 kbit/s per spectator",
            "measured": f"{v2['kbit_per_s_per_spectator']:,} kbit/s",
            "met": 0 < v2["kbit_per_s_per_spectator"] <= 200,
        },
        {
            "target": "b (raceweb-v2): 1,000-athlete snapshot <= 64 KB",
            "measured": f"{v2['snapshot_kib']} KiB",
            "met": 0 < v2["snapshot_kib"] * 1024 <= 64_000,
        },
    ]
    v2_ratio, v1_ratio = v2.get("cpu_ratio_to_bare"), (v1 or {}).get("cpu_ratio_to_bare")
    if v2_ratio and v1_ratio:
        found.append(
            {
                "target": "b: server CPU per frame, relative to the bare server, no worse with "
                "raceweb-v2 than with v1",
                "measured": f"bare/raceweb µs per frame {v2_ratio} (v1: {v1_ratio})",
                "met": v2_ratio >= v1_ratio,
            }
        )
    return found


def conditions() -> dict:
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": psutil.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in psutil.getloadavg()],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
