"""Small builders for test races (plain functions, no factory library needed)."""

from races.course_import import create_race
from races.demo import generate_start_list
from races.models import Race
from tests.conftest import SAMPLE_GPX


def make_race(
    name: str = "Test Race",
    gpx: str = "trailrun-vtr-classic-2019.gpx",
    athletes: int = 5,
    **fields,
) -> Race:
    data = (SAMPLE_GPX / gpx).read_bytes()
    start_list = generate_start_list(athletes, seed=7) if athletes else None
    return create_race(name, gpx, data, start_list, **fields)
