"""Small builders for test races (plain functions, no factory library needed)."""

import itertools
import uuid
from datetime import timedelta

from races.models import Race
from races.organizer import lifecycle
from races.organizer.course_import import create_race
from races.organizer.demo import generate_start_list
from tests.conftest import SAMPLE_GPX


def make_race(
    name: str = "Test Race",
    gpx: str = "trailrun-vtr-classic-2019.gpx",
    athletes: int = 5,
    **fields,
) -> Race:
    data = (SAMPLE_GPX / gpx).read_bytes()
    start_list = generate_start_list(athletes, seed=7) if athletes else None
    # A course and start list are set up in draft only (the lifecycle guards them): a race
    # asked for in a later status gets it once its setup is in.
    status = fields.pop("status", None)
    race = create_race(name, gpx, data, start_list, **fields)
    if status is not None and status != race.status:
        Race.objects.filter(pk=race.pk).update(status=status)
        race.refresh_from_db()
    return race


def unique_name(prefix: str = "Race") -> str:
    """Race names (hence slugs, exchanges, queues) no other test or helper uses."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def started_race(athletes: int = 5, gpx: str = "trailrun-vtr-classic-2019.gpx", **fields) -> Race:
    return lifecycle.start_race(make_race(unique_name(), gpx=gpx, athletes=athletes, **fields))


class EventFeed:
    """Contract events (DESIGN.md) for a race, the way the simulator publishes them."""

    def __init__(self, race: Race) -> None:
        self.race = race
        self.athletes = list(race.athletes.order_by("pk"))
        self.points = race.course.points
        self.length_m = race.course.length_m
        self.started_at = race.started_at
        self.seq = 0

    def event(self, athlete, second: float, distance: float, kind: str = "running") -> dict:
        self.seq += 1
        lat, lon, ele = self.where(distance)
        time = self.started_at + timedelta(seconds=second)
        return {
            "athlete": athlete.name,
            "gender": athlete.gender,
            "race": self.race.exchange_name,
            "location": {"latitude": lat, "longitude": lon},
            "elevation": ele,
            "time": time.isoformat().replace("+00:00", "Z"),
            "event": kind,
            "bib": athlete.bib,
            "athlete_id": athlete.pk,
            "seq": self.seq,
            "distance_m": round(distance, 2),
            "speed_mps": 3.0,
        }

    def starts(self) -> list[dict]:
        return [self.event(a, 0.0, 0.0, "start") for a in self.athletes]

    def speed(self, index: int) -> float:
        """Metres per second of the index-th athlete: 4.0 for the first, down to 1.0."""
        return 4.0 - 3.0 * index / max(len(self.athletes) - 1, 1)

    def tick(self, second: float) -> list[dict]:
        """Everyone running at a pace by start-list order: the first athlete is fastest."""
        return [
            self.event(a, second, min(second * self.speed(i), self.length_m - 1.0))
            for i, a in enumerate(self.athletes)
        ]

    def where(self, distance: float) -> tuple[float, float, float | None]:
        for a, b in itertools.pairwise(self.points):
            if a[3] <= distance <= b[3] and b[3] > a[3]:
                t = (distance - a[3]) / (b[3] - a[3])
                return a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), a[2]
        return self.points[-1][0], self.points[-1][1], self.points[-1][2]
