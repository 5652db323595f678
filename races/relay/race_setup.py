"""A race's `RaceState`, built from its database rows: the one constructor the relay
(`live_store.load_race`) and the history (`races.history.timeline`) share, so replay
ranks, gaps and splits exactly as live did.

`RaceSetup` holds what the rows say (start list, checkpoints, course line) and makes any
number of fresh states from it: the history builds one per request, and reading the rows
and building the course line again each time would cost more than the replay itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from races.models import Race
from races.relay.athlete_state import AthleteSpec, CheckpointSpec
from races.relay.course_line import CourseLine
from races.relay.race_state import RaceState
from simulator.effort import CourseEffort


@dataclass(frozen=True)
class RaceSetup:
    """What a race state is made of, read once from the database."""

    length_m: float
    checkpoints: tuple[CheckpointSpec, ...]
    athletes: tuple[AthleteSpec, ...]
    start_time: datetime | None
    course: CourseLine | None
    effort: CourseEffort | None

    @classmethod
    def of(cls, race: Race) -> RaceSetup:
        course = getattr(race, "course", None)
        return cls(
            length_m=course.length_m if course else 0.0,
            checkpoints=tuple(
                CheckpointSpec(cp.name, cp.distance_m, cp.kind) for cp in race.checkpoints.all()
            ),
            athletes=tuple(
                AthleteSpec(a.pk, a.bib, a.name, a.gender, a.category)
                for a in race.athletes.order_by("pk")
            ),
            start_time=race.started_at,
            course=CourseLine(course.points) if course and course.points else None,
            effort=(
                CourseEffort.of_points(course.points, course.length_m)
                if course and course.points
                else None
            ),
        )

    def new_state(self) -> RaceState:
        """A race state where nobody has started yet."""
        return RaceState(
            length_m=self.length_m,
            checkpoints=self.checkpoints,
            athletes=self.athletes,
            start_time=self.start_time,
            course=self.course,
            effort=self.effort,
        )


def new_race_state(race: Race) -> RaceState:
    """An empty race state (nobody started) for the race's course, checkpoints and start list."""
    return RaceSetup.of(race).new_state()
