"""Demo races from the sample GPX files, with generated but realistic start lists."""

import random
from dataclasses import dataclass

from django.conf import settings

from races.models import Race
from races.organizer import lifecycle
from races.organizer.course_import import create_race
from races.organizer.start_list import StartListRow

FEMALE_NAMES = (
    "Anna Lena Sofia Marta Julia Emma Clara Nora Ida Eva Laura Mia Sara Hanna Lucia Elena "
    "Paula Greta Alice Maya"
).split()
MALE_NAMES = (
    "Lukas Jonas Felix Marco David Paul Elias Noah Simon Jakob Tobias Matteo Leon Andreas "
    "Martin Stefan Tomas Kilian Max Ben"
).split()
SURNAMES = (
    "Huber Gruber Bauer Wagner Müller Pichler Steiner Moser Mayer Hofer Rossi Ferrari Kofler "
    "Egger Novak Horvat Berger Fischer Schmid Winkler Lang Weber Brunner Fuchs Eder Leitner"
).split()
AGE_GROUPS = [(20, 0.25), (30, 0.3), (40, 0.25), (50, 0.15), (60, 0.05)]


@dataclass(frozen=True)
class DemoRace:
    slug: str
    name: str
    gpx_file: str
    athletes: int
    time_compression: float


DEMO_RACES = [
    DemoRace("vtr-classic", "VTR Classic", "trailrun-vtr-classic-2019.gpx", 120, 10.0),
    DemoRace(
        "rosengarten-skymarathon",
        "Rosengarten Schlern Skymarathon",
        "skymarathon-rosengarten-schlern-2019.gpx",
        200,
        30.0,
    ),
    DemoRace(
        "ecology-trail-loop",
        "Ecology Trail Loop",
        "route-only-alltrails-ecology-trail.gpx",
        60,
        3.0,
    ),
]


def generate_start_list(count: int, seed: int) -> list[StartListRow]:
    """count athletes, about 40 % women, in age-group categories; repeatable for a seed."""
    rng = random.Random(seed)
    rows = []
    for bib in range(1, count + 1):
        female = rng.random() < 0.4
        first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
        age_group = rng.choices([g for g, _ in AGE_GROUPS], weights=[w for _, w in AGE_GROUPS])[0]
        rows.append(
            StartListRow(
                bib=str(bib),
                name=f"{first} {rng.choice(SURNAMES)}",
                gender="female" if female else "male",
                category=f"{'W' if female else 'M'}{age_group}",
                flat_pace_s_per_km=None,
            )
        )
    return rows


def load_demo_races(start: bool = True) -> list[Race]:
    """Create the demo races that do not exist yet; (re)start them when asked."""
    races = []
    for n, demo in enumerate(DEMO_RACES):
        race = Race.objects.filter(slug=demo.slug).first()
        if race is None:
            path = settings.DEMO_GPX_DIR / demo.gpx_file
            race = create_race(
                demo.name,
                demo.gpx_file,
                path.read_bytes(),
                generate_start_list(demo.athletes, seed=n + 1),
                slug=demo.slug,
                time_compression=demo.time_compression,
                seed=1000 + n,
            )
        if start:
            race = restart(race)
        races.append(race)
    return races


def restart(race: Race) -> Race:
    if race.status == Race.Status.RUNNING:
        return race
    if race.status != Race.Status.DRAFT:
        race = lifecycle.reset_race(race)
    return lifecycle.start_race(race)
