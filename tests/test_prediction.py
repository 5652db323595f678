"""Predicted finish and passage times: the model, its band, its place in the wire forms."""

from __future__ import annotations

import dataclasses
import json
import statistics
from datetime import timedelta

import numpy as np
import pytest

from races import wire, wire_v2
from races.relay import prediction
from races.relay.athlete_state import AthleteSpec, CheckpointSpec
from races.relay.race_state import RaceState
from simulator.effort import CourseEffort
from simulator.pacing import AthleteSpec as SimulatedAthlete
from simulator.pacing import draw_profile
from simulator.timeline import Timeline
from tests.simulation_builders import SKYMARATHON, START, course_of

# ---- the model -----------------------------------------------------------------------------


def test_an_athlete_who_runs_the_course_model_exactly_is_predicted_to_the_second():
    """Without pace variation or stops the simulator's athlete follows the effort profile,
    so the pace so far relative to effort predicts every later passage exactly; the
    average pace (flat effort) is minutes off on a mountain course."""
    course = course_of(SKYMARATHON)
    spec = SimulatedAthlete(1, "1", "Even Pacer", "female")
    profile = draw_profile(3, spec, checkpoints=0, course_length_m=course.length_m,
                           course_effort_km=50.0, dnf_rate_per_effort_km=0.0)  # fmt: skip
    even = dataclasses.replace(profile, amplitudes=(0.0, 0.0, 0.0), stops_s=())
    timeline = Timeline(course, [], [even])
    effort = CourseEffort.of_course(course)
    finish = float(timeline.finish_s[0])
    for share in (0.2, 0.5, 0.8):
        elapsed = share * finish
        distance = float(np.interp(elapsed, timeline.times[0], timeline.knots))
        remaining, low, high = prediction.predict_raw(effort, elapsed, distance)
        assert remaining == pytest.approx(finish - elapsed, rel=0.002)
        assert low < remaining < high
        average_pace = (course.length_m - distance) / distance * elapsed
        assert abs(average_pace - (finish - elapsed)) > 120.0


def test_the_band_narrows_as_more_of_the_race_is_known_and_less_is_left():
    effort = CourseEffort.flat(40_000.0)
    widths = []
    for distance in (2_000.0, 10_000.0, 20_000.0):
        raw = prediction.predict_raw(effort, distance * 0.3, distance)
        widths.append((raw[2] - raw[1]) / raw[0])
    assert widths[0] > widths[1] > widths[2] > 0


def test_values_are_rounded_to_the_step_and_passages_come_in_course_order():
    course = course_of(SKYMARATHON)
    effort = CourseEffort.of_course(course)
    predicted = prediction.predict(effort, 3_600.0, 9_000.0)
    for value in (predicted.eta_s, predicted.low_s, predicted.high_s):
        assert value % prediction.ETA_STEP_S == 0
    ahead = [15_000.0, 25_000.0, course.length_m]
    passages = prediction.passages(effort, 3_600.0, 9_000.0, ahead)
    assert [p[0] for p in passages] == sorted(p[0] for p in passages)
    assert passages[-1][0] == pytest.approx(3_600.0 + predicted.eta_s, abs=prediction.ETA_STEP_S)
    assert all(low <= at <= high for at, low, high in passages)
    assert prediction.predict(effort, 30.0, 50.0) is None  # too early to say


# ---- in the race state and on the wire ---------------------------------------------------


def _state(effort: CourseEffort | None = None) -> RaceState:
    ends = [CheckpointSpec("Start", 0.0, "start"), CheckpointSpec("Finish", 10_000.0, "finish")]
    return RaceState(
        length_m=10_000.0,
        checkpoints=ends,
        athletes=[AthleteSpec(1, "1", "Ada", "female"), AthleteSpec(2, "2", "Bo", "male")],
        start_time=START,
        effort=effort,
    )


def _event(athlete: int, second: float, distance: float, seq: int) -> dict:
    time = wire.iso(START + timedelta(seconds=second))
    return {"athlete_id": athlete, "seq": seq, "time": time, "event": "running",
            "location": {"latitude": 47.0, "longitude": 11.0}, "distance_m": distance}  # fmt: skip


def test_the_prediction_is_a_function_of_the_athletes_state_not_of_its_history():
    """What the history's replay relies on: the same last position gives the same
    prediction whether every position before it was applied or only some."""
    every, some = _state(), _state()
    for n, second in enumerate(range(60, 1801, 60)):
        event = _event(1, second, second * 3.1 + (n % 3) * 5.0, n + 1)
        every.apply(event)
        if n % 7 == 0 or second == 1800:
            some.apply(event)
    a, b = every.leaderboard()[0], some.leaderboard()[0]
    assert a["eta_s"] == b["eta_s"] and a["eta_range_s"] == b["eta_range_s"]
    low, high = a["eta_range_s"]
    assert low <= a["eta_s"] <= high and low < high
    # flat course, no profile: the pace so far (the old ETA), to the step
    assert a["eta_s"] == pytest.approx((10_000.0 - a["distance_m"]) / 1000 * a["pace_s_per_km"],
                                       abs=prediction.ETA_STEP_S)  # fmt: skip


def test_the_band_travels_as_integer_fields_in_raceweb_v2():
    state = _state()
    state.apply(_event(1, 600, 2_000.0, 1))
    state.take_changes()
    previous = {a["id"]: json.loads(wire.dumps(a)) for a in state.leaderboard()}
    state.apply(_event(1, 900, 2_950.0, 2))
    update = wire.update_message(2, state.clock_s, state.take_changes().wire)
    assert "eta_range_s" in update["athletes"][0]
    encoded = wire_v2.encode_update(previous, update, deflate=False)
    assert b"eta_range_s" not in encoded and b"{" not in encoded, "no JSON extras"
    decoded = wire_v2.decode_update(encoded, previous)
    assert decoded["athletes"][0]["eta_range_s"] == update["athletes"][0]["eta_range_s"]


# ---- calibration (bench/calibration.py) -----------------------------------------------------


def test_calibration_on_a_mountain_course_beats_the_average_pace_and_covers_about_80_percent():
    from bench import calibration

    samples, _ = calibration.samples_of(SKYMARATHON, 7, 60, (0.5,))
    inside = statistics.mean(s.low_s <= s.real_s <= s.high_s for s in samples)
    ours = statistics.median(abs(s.predicted_s - s.real_s) for s in samples)
    theirs = statistics.median(abs(s.average_pace_s - s.real_s) for s in samples)
    assert 0.65 <= inside <= 0.95, inside
    assert ours < 0.7 * theirs, (ours, theirs)
