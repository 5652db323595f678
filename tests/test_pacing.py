"""Pacing models: gradient (Tobler), fatigue (Riegel), flat paces, per-athlete draws."""

import random
import statistics

import numpy as np
import pytest

from simulator.pacing import (
    AthleteSpec,
    age_of_category,
    draw_flat_pace,
    draw_profile,
    riegel_fatigue,
    tobler_speed_factor,
)

JANE = AthleteSpec(1, "17", "Jane Smith", "female", "W40")


def test_tobler_is_fastest_on_a_gentle_descent_and_slow_uphill():
    grades = np.linspace(-0.4, 0.4, 81)
    factors = tobler_speed_factor(grades)
    assert grades[np.argmax(factors)] == pytest.approx(-0.05)
    assert tobler_speed_factor(0.0) == pytest.approx(1.0)
    # Tobler 1993: 6 km/h on the flat-ish optimum, ~2.9 km/h up a 20 % slope (relative 0.58).
    assert tobler_speed_factor(0.2) == pytest.approx(np.exp(-0.7))
    for grade in (0.05, 0.1, 0.2, 0.3):
        assert tobler_speed_factor(grade) < tobler_speed_factor(-grade)


def test_riegel_fatigue_grows_slowly_with_effort():
    assert riegel_fatigue(10.0) == pytest.approx(1.0)
    assert riegel_fatigue(42.2) == pytest.approx((42.2 / 10) ** 0.06)
    efforts = np.array([1, 5, 10, 20, 50, 100, 200.0])
    assert np.all(np.diff(riegel_fatigue(efforts)) > 0)
    assert riegel_fatigue(0.0) == riegel_fatigue(1.0)  # no infinite speed at the start


def test_category_ages():
    assert age_of_category("W40") == 40
    assert age_of_category("M-55") == 55
    assert age_of_category("Elite") is None


def paces(gender: str, category: str, n: int = 3000) -> list[float]:
    rng = random.Random(1)
    return [draw_flat_pace(rng, gender, category) for _ in range(n)]


def test_flat_paces_are_realistic_by_gender_and_age():
    women, men = paces("female", "W30"), paces("male", "M30")
    # Trail fields: men's median around 5:30/km, women roughly 12 % slower.
    assert 300 < statistics.median(men) < 360
    assert 1.08 < statistics.median(women) / statistics.median(men) < 1.16
    assert statistics.median(paces("male", "M60")) > 1.15 * statistics.median(men)
    assert min(men) >= 0.6 * 330 and max(men) <= 2.0 * 330
    spread = np.percentile(men, 90) / np.percentile(men, 10)
    assert 1.3 < spread < 1.8  # a real field, not clones


def test_profile_is_a_pure_function_of_seed_and_bib():
    kwargs = {"checkpoints": 3, "course_length_m": 20000.0, "course_effort_km": 26.0}
    assert draw_profile(5, JANE, **kwargs) == draw_profile(5, JANE, **kwargs)
    assert draw_profile(5, JANE, **kwargs) != draw_profile(6, JANE, **kwargs)
    other = AthleteSpec(2, "18", "Jane Smith", "female", "W40")
    assert draw_profile(5, JANE, **kwargs) != draw_profile(5, other, **kwargs)


def test_given_flat_pace_is_used_and_the_rest_still_drawn():
    kwargs = {"checkpoints": 2, "course_length_m": 20000.0, "course_effort_km": 26.0}
    paced = AthleteSpec(1, "17", "Jane Smith", "female", "W40", flat_pace_s_per_km=401.0)
    profile = draw_profile(5, paced, **kwargs)
    assert profile.flat_pace_s_per_km == 401.0
    assert profile.phases == draw_profile(5, JANE, **kwargs).phases
    assert len(profile.stops_s) == 2 and all(10 <= s <= 240 for s in profile.stops_s)


def test_variation_is_smooth_and_bounded():
    profile = draw_profile(3, JANE, checkpoints=0, course_length_m=1e5, course_effort_km=100)
    factors = profile.variation(np.arange(0.0, 100000.0, 10.0))
    assert np.all(np.abs(factors - 1.0) <= 0.06 + 1e-12)
    assert np.max(np.abs(np.diff(factors))) < 0.002  # per 10 m: no jumps
    assert factors.std() > 0.01  # but it does vary


def test_dnf_rate_follows_effort_and_can_be_switched_off():
    field = [AthleteSpec(i, str(i), f"A{i}", "male") for i in range(4000)]
    long = dict(checkpoints=0, course_length_m=44000.0, course_effort_km=73.0)
    quits = [draw_profile(1, a, **long).dnf_at_m for a in field]
    rate = sum(q is not None for q in quits) / len(field)
    expected = 1 - np.exp(-73.0 / 2000)
    assert abs(rate - expected) < 4 * np.sqrt(expected * (1 - expected) / len(field))
    assert all(0.05 * 44000 <= q <= 0.95 * 44000 for q in quits if q is not None)
    none = [draw_profile(1, a, **long, dnf_rate_per_effort_km=0.0).dnf_at_m for a in field[:500]]
    assert none == [None] * 500


def test_the_timeline_applies_each_athletes_own_variation():
    from simulator.timeline import variation_matrix

    profiles = [
        draw_profile(9, AthleteSpec(i, str(i), "A", "male"), checkpoints=0,
                     course_length_m=1e4, course_effort_km=12)
        for i in range(4)
    ]  # fmt: skip
    distances = np.linspace(0.0, 1e4, 50)
    assert variation_matrix(profiles, distances) == pytest.approx(
        np.vstack([p.variation(distances) for p in profiles])
    )
