#!/usr/bin/env python3
"""How fast the race page paints a snapshot, and how smoothly it animates, in Chromium.

Starts `manage.py serve` (embedded mode, its own SQLite file and port) with one running
race per field size, lets the simulation run until the athletes are out on the course,
then opens the race page several times in headless Chromium (Debian's /usr/bin/chromium)
and reads what the page measured itself (`raceweb.metrics`, performance.now()):

- paint: from the snapshot message arriving to the first frame painted after rendering
  it (JSON parse or raceweb.v2 decode + state + markers + leaderboard + profile + the
  browser's paint); each size is measured with v1, then with v2, in the same run;
- render: the synchronous part of that (our code only);
- fps / worst frame: requestAnimationFrame rate over a few seconds while the race runs
  (on a busy machine this mostly says how much CPU Chromium got);
- JS per animation frame / per socket frame: the page's own work (gliding markers,
  profile, board; applying an update frame), which is what the page controls.

Prints a table; asserts nothing.

    .venv/bin/python bench/bench_browser_snapshot.py [--sizes 100,500,1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.chromium import CHROMIUM, CHROMIUM_ARGS, DESKTOP  # noqa: E402
from harness.served import ServedRaceWeb  # noqa: E402

WARMUP_S = 20.0
FPS_WINDOW_MS = 4000

MEASURE_FPS = """(windowMs) => new Promise(done => {
  const m = raceweb.metrics, before = { ...m };
  const gaps = []; let last = performance.now(); const end = last + windowMs;
  const step = (now) => { gaps.push(now - last); last = now;
    if (now < end) requestAnimationFrame(step);
    else done({ gaps,
      animation_ms: (m.animationMs - before.animationMs)
        / (m.animationFrames - before.animationFrames),
      frame_ms: (m.frameMs - before.frameMs) / Math.max(1, m.frames - before.frames),
      frames: m.frames - before.frames });
  };
  requestAnimationFrame(step);
})"""


def measure(browser, url: str, runs: int) -> dict:
    paints, renders, fps, worst, size = [], [], [], [], 0
    animation_ms, frame_ms = [], []
    for _ in range(runs):
        page = browser.new_page(viewport=DESKTOP)
        page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
        page.goto(url)
        page.wait_for_function("raceweb.metrics.snapshots.length > 0", timeout=60000)
        snapshot = page.evaluate("raceweb.metrics.snapshots[0]")
        paints.append(snapshot["paint_ms"])
        renders.append(snapshot["render_ms"])
        size = snapshot["bytes"]
        page.wait_for_function("raceweb.profile.background !== null", timeout=30000)
        window = page.evaluate(MEASURE_FPS, FPS_WINDOW_MS)
        gaps = window["gaps"][1:]
        fps.append(1000 * len(gaps) / sum(gaps))
        worst.append(max(gaps))
        animation_ms.append(window["animation_ms"])
        if window["frames"]:
            frame_ms.append(window["frame_ms"])
        page.close()
    return {
        "protocol": "v1 JSON" if url.endswith("protocol=v1") else "raceweb.v2",
        "athletes": snapshot["athletes"],
        "bytes": size,
        "paint": statistics.median(paints),
        "paint_max": max(paints),
        "render": statistics.median(renders),
        "fps": statistics.median(fps),
        "worst": statistics.median(worst),
        "animation_ms": statistics.median(animation_ms),
        "frame_ms": statistics.median(frame_ms) if frame_ms else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium)")

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as workdir:
        server = ServedRaceWeb(Path(workdir))
        for size in sizes:
            # 10x and a position every 10 s of race time: 1,000 athletes make 1,000
            # positions a second, which the embedded server (SQLite) keeps up with.
            server.add_running_race(f"bench-{size}", size, time_compression=10.0, tick_seconds=10.0)
        try:
            server.start()
            print(f"warming up {WARMUP_S:.0f} s (athletes leave the start) ...", flush=True)
            time.sleep(WARMUP_S)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                rows = [
                    measure(browser, f"{server.url}/races/bench-{size}/{query}", args.runs)
                    for size in sizes
                    for query in ("?protocol=v1", "")
                ]
                version = browser.version
                browser.close()
        finally:
            server.stop()

    load = " / ".join(f"{n:.1f}" for n in os.getloadavg())
    print(
        f"\nRace page snapshot in headless Chromium {version}, {args.runs} runs each, viewport "
        f"{DESKTOP['width']}x{DESKTOP['height']}, {os.cpu_count()} CPUs, load average {load} "
        "(median; paint max in brackets)\n"
    )
    header = (
        "protocol", "athletes", "snapshot KB", "paint ms", "render ms",
        "anim fps", "worst frame ms", "JS ms / anim frame", "JS ms / socket frame",
    )  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for row in rows:
        print(
            f"| {row['protocol']} | {row['athletes']} | {row['bytes'] / 1024:.0f} "
            f"| {row['paint']:.0f} "
            f"({row['paint_max']:.0f}) | {row['render']:.0f} | {row['fps']:.0f} "
            f"| {row['worst']:.0f} | {row['animation_ms']:.1f} | {row['frame_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()
