"""How well the finish predictions and their 80 % band match what really happened.

    python -m bench.calibration [--athletes 200] [--seeds 1 2 3 4 5] [--fit]

No services needed. For each course (sample GPX files, checkpoints every 5 km) and seed, a
race is simulated with the simulator's full model (flat paces, gradient, fatigue, the
seeded pace variation, checkpoint stops, the DNF model); its outcome is known. At 25, 50
and 75 % of each finisher's race time the relay's predictor (`races.relay.prediction`) is
asked from what the relay would know then (elapsed time, distance along the course), and
compared with the real finish: how often the real finish fell inside the band, the median
absolute error of `eta_s`, and the same error for the average-pace ETA the relay sent
before (distance left at the average pace so far). Athletes who drop out have no finish
and are counted apart.

`--fit` measures the band instead, on seeds 1001.. (not the ones reported): the 10th and
90th percentile of log(real remaining / predicted remaining) by how much of the race is
behind and ahead, and prints the `BAND_TABLE` to paste into `races/relay/prediction.py`.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from races.organizer.checkpoints import plan_checkpoints  # noqa: E402
from races.organizer.demo import generate_start_list  # noqa: E402
from races.organizer.gpx import parse_gpx  # noqa: E402
from races.relay import prediction  # noqa: E402
from simulator.effort import CourseEffort  # noqa: E402
from simulator.geometry import Course  # noqa: E402
from simulator.pacing import AthleteSpec  # noqa: E402
from simulator.race import CheckpointSpec, RaceSimulation  # noqa: E402

SAMPLES = ROOT / "samples" / "gpx"
COURSES = (
    "trailrun-vtr-classic-2019.gpx",
    "skymarathon-rosengarten-schlern-2019.gpx",
    "ultra-brixen-course-no-times-bom.gpx",
    "run-garmin-connect-hr-cadence.gpx",
)
MOUNTAIN_M_PER_KM = 25.0  # climb per km above which a course counts as a mountain course
MOMENTS = (0.25, 0.5, 0.75)
FIT_BINS = 12


@dataclass
class Sample:
    """One athlete at one moment of their race."""

    course: str
    mountain: bool
    moment: float
    span_km: float
    real_s: float  # real remaining seconds
    predicted_s: float
    low_s: float
    high_s: float
    average_pace_s: float


def course_setup(name: str) -> tuple[Course, list[CheckpointSpec]]:
    parsed = parse_gpx((SAMPLES / name).read_bytes())
    course = Course([[p.latitude, p.longitude, p.elevation, p.distance_m] for p in parsed.points])
    checkpoints = [
        CheckpointSpec(cp.name, cp.distance_m)
        for cp in plan_checkpoints(parsed, 5.0)
        if cp.kind == "checkpoint"
    ]
    return course, checkpoints


def samples_of(
    name: str, seed: int, athletes: int, moments: tuple[float, ...]
) -> tuple[list[Sample], int]:
    """Predictions at `moments` of each finisher's race; and how many did not finish."""
    course, checkpoints = course_setup(name)
    start_list = [
        AthleteSpec(i + 1, row.bib, row.name, row.gender, row.category, row.flat_pace_s_per_km)
        for i, row in enumerate(generate_start_list(athletes, seed=seed))
    ]
    sim = RaceSimulation(
        slug="calibration", course=course, checkpoints=checkpoints, athletes=start_list,
        seed=seed, tick_seconds=5.0, started_at=datetime(2026, 5, 1, 7, tzinfo=UTC),
    )  # fmt: skip
    effort = CourseEffort.of_course(course)
    tl = sim.timeline
    mountain = course.climb_m / (course.length_m / 1000.0) >= MOUNTAIN_M_PER_KM
    out, dnf = [], 0
    for i in range(len(start_list)):
        finish = float(tl.finish_s[i])
        if not finish <= tl.dnf_s[i]:
            dnf += 1
            continue
        for moment in moments:
            elapsed = moment * finish
            distance = float(np.interp(elapsed, tl.times[i], tl.knots))
            passed = sum(1 for cp in checkpoints if cp.distance_m <= distance + 0.5)
            stops = (passed, len(checkpoints) - passed)
            raw = prediction.predict_raw(effort, elapsed, distance, *stops)
            if raw is None:
                continue
            average = (course.length_m - distance) / distance * elapsed
            out.append(
                Sample(
                    name,
                    mountain,
                    moment,
                    prediction.band_span_km(distance, course.length_m - distance),
                    finish - elapsed,
                    *raw,
                    average,
                )
            )
    return out, dnf


def report(samples: list[Sample], dnf: int, athletes: int, seeds: list[int]) -> str:
    lines = [
        f"{athletes} athletes x seeds {seeds}, checkpoints every 5 km, tick 5 s; "
        f"{dnf} DNF (no finish, not counted)",
        "| course | km | climb m | at | n | inside 80 % band | below / above | "
        "median abs err eta_s | average-pace ETA | smaller by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in COURSES:
        course, _ = course_setup(name)
        for moment in MOMENTS:
            rows = [s for s in samples if s.course == name and s.moment == moment]
            if not rows:
                continue
            inside = sum(s.low_s <= s.real_s <= s.high_s for s in rows) / len(rows)
            below = sum(s.real_s < s.low_s for s in rows) / len(rows)
            above = sum(s.real_s > s.high_s for s in rows) / len(rows)
            ours = statistics.median(abs(s.predicted_s - s.real_s) for s in rows)
            theirs = statistics.median(abs(s.average_pace_s - s.real_s) for s in rows)
            lines.append(
                f"| {name.removesuffix('.gpx')}{' (mountain)' if rows[0].mountain else ''} "
                f"| {course.length_m / 1000:.1f} | {course.climb_m:.0f} | {moment:.0%} "
                f"| {len(rows)} | {inside:.1%} | {below:.1%} / {above:.1%} | {ours:.0f} s "
                f"| {theirs:.0f} s | {1 - ours / theirs:.0%} |"
            )
    for moment in MOMENTS:
        rows = [s for s in samples if s.moment == moment]
        inside = sum(s.low_s <= s.real_s <= s.high_s for s in rows) / len(rows)
        lines.append(f"all courses at {moment:.0%}: {inside:.1%} inside the band (n={len(rows)})")
    return "\n".join(lines)


def fit(samples: list[Sample]) -> str:
    """BAND_TABLE from the measured spread, by `prediction.band_span_km` (log bins)."""
    ratios = np.array([math.log(s.real_s / s.predicted_s) for s in samples])
    done = np.array([s.span_km for s in samples])
    edges = np.geomspace(0.5, 40.0, FIT_BINS + 1)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        inside = ratios[(done >= lo) & (done < hi)]
        if inside.size >= 20:
            q10, q90 = np.quantile(inside, [0.1, 0.9])
            rows.append((math.sqrt(lo * hi), float(q10), float(q90), inside.size))
    body = "\n".join(f"    ({f:.2f}, {lo:.4f}, {hi:.4f}),  # n={n}" for f, lo, hi, n in rows)
    return f"BAND_TABLE: tuple[tuple[float, float, float], ...] = (\n{body}\n)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--athletes", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--fit", action="store_true", help="measure BAND_TABLE (seeds 1001..)")
    args = parser.parse_args()
    if args.fit:
        moments = tuple(np.linspace(0.04, 0.98, 48).tolist())
        seeds = [1000 + s for s in args.seeds]
    else:
        moments, seeds = MOMENTS, args.seeds
    samples, dnf = [], 0
    for name in COURSES:
        for seed in seeds:
            found, dropped = samples_of(name, seed, args.athletes, moments)
            samples += found
            dnf += dropped
    print(fit(samples) if args.fit else report(samples, dnf, args.athletes, seeds))


if __name__ == "__main__":
    main()
