"""Predicted passage times of a running athlete, with an 80 % band.

Plain Python, no Django, and a pure function of (course effort profile, elapsed time,
distance): the relay computes it in the athlete's public form whenever the athlete moves,
and the history's replay (`races.history.timeline`), which runs the same race state,
computes exactly the same values at any instant. Nothing refreshes on a timer.

The model: the athlete's own pace so far relative to the course's effort profile
(`simulator.effort.CourseEffort`, the simulator's gradient and fatigue models), with a
stop of `EXPECTED_STOP_S` at each checkpoint kept out of the pace:
``k = (elapsed - stop * passed) / effort(distance)``, projected onto the effort ahead:
passage at D = ``elapsed + k * (effort(D) - effort(distance)) + stop * stops before D``.
(Spreading the stops taken over the effort ahead over-predicted the end of a race after
its last checkpoint by minutes: `bench/calibration.py`, README.)

The band: the remaining time times ``exp(q)`` where q is the 10th and 90th percentile of
``log(real remaining / predicted remaining)`` measured by `bench/calibration.py` on
simulated races (several courses and seeds, the DNF model), as a function of how much of
the race is behind and ahead (`band_span_km`): a short stretch either way says less.
Values are rounded to `ETA_STEP_S` (what a spectator can use), statelessly, so the compact
protocol sends them only when they change by a step and replay still agrees with live.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from simulator.effort import EXPECTED_STOP_S, CourseEffort

ETA_STEP_S = 10
MIN_DISTANCE_M = 100.0  # before this, the pace so far is mostly the start's crowding

# (band_span_km, q10, q90) of log(real remaining / predicted remaining), fitted by
# `python -m bench.calibration --fit --athletes 100 --seeds 1 2 3` (seeds 1001-1003, four
# courses; README, "Predictions"); linear in between, constant beyond the ends. Measured
# on the simulator's athletes: real trackers' athletes vary more (see the README).
BAND_TABLE: tuple[tuple[float, float, float], ...] = (
    (0.60, -0.0391, 0.0302),  # n=729
    (0.86, -0.0292, 0.0313),  # n=1420
    (1.25, -0.0300, 0.0284),  # n=2211
    (1.79, -0.0253, 0.0235),  # n=3460
    (2.59, -0.0237, 0.0250),  # n=5651
    (3.73, -0.0211, 0.0184),  # n=11958
    (5.37, -0.0166, 0.0156),  # n=7626
    (7.73, -0.0097, 0.0098),  # n=2884
    (11.14, -0.0080, 0.0096),  # n=4833
    (16.05, -0.0082, 0.0098),  # n=7327
    (23.13, -0.0062, 0.0071),  # n=7313
)


_BAND_KEYS = tuple(row[0] for row in BAND_TABLE)


@dataclass(frozen=True, slots=True)
class Prediction:
    """Seconds from now: to the finish (`eta_s`) and its 80 % band."""

    eta_s: float
    low_s: float
    high_s: float
    finish_s: float  # predicted finish on the race clock (elapsed + eta)


def band_span_km(covered_m: float, remaining_m: float) -> float:
    """The band's axis: ``(covered**-2 + remaining**-2) ** -0.5`` in km.

    The error of a prediction is the pace so far mis-measuring the athlete (shrinks as
    the covered distance grows: their ups and downs average out) plus the rest of the race
    going otherwise (shrinks with the distance left, in relative terms), so the spread
    follows the shorter of the two. A table by share done alone fitted no course: a
    skymarathon's halfway and a 13 km run's halfway differ by 30 km of averaging.
    """
    covered, remaining = max(covered_m, 1.0) / 1000.0, max(remaining_m, 1.0) / 1000.0
    return covered * remaining / math.sqrt(covered * covered + remaining * remaining)


def band_quantiles(span_km: float) -> tuple[float, float]:
    """(q10, q90) of the log ratio at this `band_span_km` (table, linear, clamped)."""
    table = BAND_TABLE
    f = min(max(span_km, table[0][0]), table[-1][0])
    i = min(max(bisect_right(_BAND_KEYS, f) - 1, 0), len(table) - 2)
    (f0, lo0, hi0), (f1, lo1, hi1) = table[i], table[i + 1]
    t = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
    return lo0 + t * (lo1 - lo0), hi0 + t * (hi1 - hi0)


def predict_raw(
    effort: CourseEffort,
    elapsed_s: float,
    distance_m: float,
    stops_passed: int = 0,
    stops_ahead: int = 0,
) -> tuple[float, float, float] | None:
    """(remaining, low, high) seconds to the finish, unrounded; None when too early.
    `stops_passed` / `stops_ahead`: intermediate checkpoints behind and ahead."""
    if distance_m < MIN_DISTANCE_M or not elapsed_s or elapsed_s <= 0:
        return None
    done = effort.at(distance_m)
    factor = _factor(elapsed_s, done, stops_passed)
    if factor is None or effort.total_s <= 0:
        return None
    remaining = factor * (effort.total_s - done) + EXPECTED_STOP_S * stops_ahead
    q10, q90 = band_quantiles(band_span_km(distance_m, effort.length_m - distance_m))
    return remaining, remaining * math.exp(q10), remaining * math.exp(q90)


def pace_factor(
    effort: CourseEffort, elapsed_s: float, distance_m: float, stops_passed: int
) -> float | None:
    """Seconds per effort second so far, stops left out; None when too early to say."""
    if distance_m < MIN_DISTANCE_M or not elapsed_s or elapsed_s <= 0:
        return None
    return _factor(elapsed_s, effort.at(distance_m), stops_passed)


def _factor(elapsed_s: float, done: float, stops_passed: int) -> float | None:
    if done <= 0:
        return None
    moving = elapsed_s - EXPECTED_STOP_S * stops_passed
    # An athlete faster through the aid stations than the average stop: all of it is pace.
    return (moving if moving > 0.5 * elapsed_s else elapsed_s) / done


def predict(
    effort: CourseEffort,
    elapsed_s: float,
    distance_m: float,
    stops_passed: int = 0,
    stops_ahead: int = 0,
) -> Prediction | None:
    """The finish prediction as the public form carries it (rounded to ETA_STEP_S)."""
    raw = predict_raw(effort, elapsed_s, distance_m, stops_passed, stops_ahead)
    if raw is None:
        return None
    eta = _step(raw[0])
    return Prediction(eta, _step(raw[1]), _step(raw[2]), elapsed_s + eta)


def passages(
    effort: CourseEffort,
    elapsed_s: float,
    distance_m: float,
    ahead_m: list[float],
    stops_m: list[float] = (),
) -> list[tuple[float, float, float]] | None:
    """Race-clock (predicted, low, high) passage at each distance in `ahead_m`, with a
    stop at each intermediate checkpoint of `stops_m` on the way (not at the target)."""
    passed = sum(1 for stop in stops_m if stop <= distance_m + 0.5)
    ahead = len(stops_m) - passed
    raw = predict_raw(effort, elapsed_s, distance_m, passed, ahead)
    if raw is None:
        return None
    remaining, low, high = raw
    factor = pace_factor(effort, elapsed_s, distance_m, passed)
    done = effort.at(distance_m)
    out = []
    for target in ahead_m:
        stops = sum(1 for stop in stops_m if distance_m + 0.5 < stop < target)
        part = factor * (effort.at(target) - done) + EXPECTED_STOP_S * stops
        share = part / remaining if remaining > 0 else 0.0
        out.append(tuple(_step(elapsed_s + share * value) for value in (remaining, low, high)))
    return out


def _step(seconds: float) -> float:
    return float(round(seconds / ETA_STEP_S) * ETA_STEP_S)
