"""Builders for simulator tests: courses and start lists from the sample files."""

from datetime import UTC, datetime
from functools import cache

from races.organizer.checkpoints import plan_checkpoints
from races.organizer.demo import generate_start_list
from races.organizer.gpx import ParsedCourse, parse_gpx
from simulator.geometry import Course
from simulator.pacing import AthleteSpec
from simulator.race import CheckpointSpec, RaceSimulation
from tests.conftest import SAMPLE_GPX

START = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
VTR = "trailrun-vtr-classic-2019.gpx"
SKYMARATHON = "skymarathon-rosengarten-schlern-2019.gpx"


@cache
def parsed(name: str) -> ParsedCourse:
    return parse_gpx((SAMPLE_GPX / name).read_bytes())


def course_of(name: str) -> Course:
    return Course(
        [[p.latitude, p.longitude, p.elevation, p.distance_m] for p in parsed(name).points]
    )


def checkpoints_of(name: str, interval_km: float = 5.0) -> list[CheckpointSpec]:
    return [
        CheckpointSpec(cp.name, cp.distance_m)
        for cp in plan_checkpoints(parsed(name), interval_km)
        if cp.kind == "checkpoint"
    ]


def athletes(count: int, seed: int = 7) -> list[AthleteSpec]:
    return [
        AthleteSpec(i + 1, row.bib, row.name, row.gender, row.category, row.flat_pace_s_per_km)
        for i, row in enumerate(generate_start_list(count, seed=seed))
    ]


def simulation(
    name: str = VTR, *, count: int = 30, seed: int = 42, tick_seconds: float = 30.0, **kwargs
) -> RaceSimulation:
    return RaceSimulation(
        slug="test-race",
        course=course_of(name),
        checkpoints=checkpoints_of(name, kwargs.pop("interval_km", 5.0)),
        athletes=kwargs.pop("athletes", None) or athletes(count),
        seed=seed,
        tick_seconds=tick_seconds,
        started_at=START,
        **kwargs,
    )
