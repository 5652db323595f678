"""How fast one athlete moves: flat pace, gradient, fatigue, variation, stops, DNF.

Models, each named so it can be checked against its source:

- Gradient: Tobler's hiking function (W. Tobler, 1993, "Three presentations on
  geographical analysis and modeling"), used relative to flat ground:
  ``v(s) / v(0) = exp(-3.5 * (|s + 0.05| - 0.05))``. Over the Rosengarten Schlern
  Skymarathon 2019 recording its median pace per gradient band is within a few per cent on
  climbs and gentle descents. (Minetti et al. 2002's energy cost of gradient running made
  the steep, technical descents of that recording twice as fast as they were run.)
- Fatigue: Riegel's endurance law (P. Riegel, 1981, "Athletic records and human
  endurance"), time proportional to distance ** 1.06, over ITRA's effort distance
  (km + ascent m / 100). An athlete's *flat pace* is their pace on flat ground over a
  10 km effort; the local pace at effort distance e is ``flat * (e / 10) ** 0.06``.
- Flat paces: log-normal around gender medians of trail race fields, slowed with age by a
  per-year factor in the spirit of WMA age grading.
- Variation: a seeded sum of three sinusoids over distance, so the pace at any distance
  is a pure function of the seed (no random walk to replay).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import numpy as np

FLAT_PACE_MEDIAN_S_PER_KM = {"female": 372.0, "male": 330.0, "other": 351.0}
FLAT_PACE_SIGMA = 0.15  # log-normal spread: about 2/3 of a field within +-16 %
AGE_GRADING_PER_YEAR = 0.008  # slower per year past AGE_GRADING_FROM
AGE_GRADING_FROM = 35
RIEGEL_EXPONENT = 1.06
REFERENCE_EFFORT_KM = 10.0
VARIATION_AMPLITUDE = 0.06  # the three waves together never exceed +-6 % of the pace
CHECKPOINT_STOP_MEDIAN_S = 45.0
CHECKPOINT_STOP_SIGMA = 0.5  # log-normal spread of a stop
DNF_RATE_PER_EFFORT_KM = 1 / 2000  # about 3.6 % on a skymarathon, 1 % on a 14 km trail


@dataclass(frozen=True)
class AthleteSpec:
    """The start-list facts the simulator needs about one athlete."""

    athlete_id: int
    bib: str
    name: str
    gender: str
    category: str = ""
    flat_pace_s_per_km: float | None = None


@dataclass(frozen=True)
class PacingProfile:
    """Everything random about one athlete, drawn once from the race seed."""

    flat_pace_s_per_km: float
    wavelengths_m: tuple[float, ...]
    amplitudes: tuple[float, ...]
    phases: tuple[float, ...]
    stops_s: tuple[float, ...]  # one per intermediate checkpoint
    dnf_at_m: float | None

    def variation(self, distances_m: np.ndarray) -> np.ndarray:
        """Pace multiplier (around 1.0) at each distance."""
        factor = np.ones_like(distances_m, dtype=float)
        for wavelength, amplitude, phase in zip(
            self.wavelengths_m, self.amplitudes, self.phases, strict=True
        ):
            factor += amplitude * np.sin(2 * math.pi * distances_m / wavelength + phase)
        return factor


def tobler_speed_factor(gradient: np.ndarray | float) -> np.ndarray | float:
    """Speed on ``gradient`` relative to flat ground (Tobler's hiking function)."""
    return np.exp(-3.5 * (np.abs(np.asarray(gradient) + 0.05) - 0.05))


def effort_km(distance_m: np.ndarray | float, climb_m: np.ndarray | float) -> np.ndarray | float:
    """ITRA effort distance: kilometres plus one kilometre per 100 m of ascent."""
    return np.asarray(distance_m) / 1000.0 + np.asarray(climb_m) / 100.0


def riegel_fatigue(effort: np.ndarray | float) -> np.ndarray | float:
    """Local pace multiplier after ``effort`` effort-km (1.0 at the 10 km reference)."""
    local = np.maximum(np.asarray(effort, dtype=float), 1.0) / REFERENCE_EFFORT_KM
    return local ** (RIEGEL_EXPONENT - 1.0)


def age_of_category(category: str) -> int | None:
    """The age a category names (``W40`` -> 40, ``M-55`` -> 55), or None."""
    match = re.search(r"(\d{2})", category or "")
    return int(match.group(1)) if match else None


def draw_flat_pace(rng: random.Random, gender: str, category: str) -> float:
    """A realistic flat pace (s/km) for an athlete of this gender and category."""
    median = FLAT_PACE_MEDIAN_S_PER_KM.get(gender, FLAT_PACE_MEDIAN_S_PER_KM["other"])
    age = age_of_category(category)
    if age is not None and age > AGE_GRADING_FROM:
        median *= 1 + AGE_GRADING_PER_YEAR * (age - AGE_GRADING_FROM)
    pace = median * math.exp(rng.gauss(0.0, FLAT_PACE_SIGMA))
    return min(max(pace, 0.6 * median), 2.0 * median)


def athlete_rng(seed: int, athlete: AthleteSpec) -> random.Random:
    """A generator that depends only on the race seed and the athlete's bib.

    Seeding from a string hashes it with SHA-512 (stable across Python versions), and
    keying on the bib keeps everyone else's draws unchanged when one athlete is added.
    """
    return random.Random(f"raceweb:{seed}:{athlete.bib}")


def draw_profile(
    seed: int,
    athlete: AthleteSpec,
    *,
    checkpoints: int,
    course_length_m: float,
    course_effort_km: float,
    dnf_rate_per_effort_km: float = DNF_RATE_PER_EFFORT_KM,
) -> PacingProfile:
    """Draw the athlete's pacing profile from the seed (deterministic)."""
    rng = athlete_rng(seed, athlete)
    drawn_pace = draw_flat_pace(rng, athlete.gender, athlete.category)
    flat_pace = athlete.flat_pace_s_per_km or drawn_pace
    wavelengths = tuple(rng.uniform(800.0, 8000.0) for _ in range(3))
    weights = [rng.uniform(0.5, 1.0) for _ in range(3)]
    amplitudes = tuple(VARIATION_AMPLITUDE * w / sum(weights) for w in weights)
    phases = tuple(rng.uniform(0.0, 2 * math.pi) for _ in range(3))
    stop = CHECKPOINT_STOP_MEDIAN_S
    stops = tuple(
        min(max(stop * math.exp(rng.gauss(0.0, CHECKPOINT_STOP_SIGMA)), 10.0), 240.0)
        for _ in range(checkpoints)
    )
    dnf_roll = rng.random()
    dnf_place = rng.uniform(0.05, 0.95)
    quits = dnf_roll < 1.0 - math.exp(-dnf_rate_per_effort_km * course_effort_km)
    return PacingProfile(
        flat_pace_s_per_km=flat_pace,
        wavelengths_m=wavelengths,
        amplitudes=amplitudes,
        phases=phases,
        stops_s=stops,
        dnf_at_m=dnf_place * course_length_m if quits else None,
    )
