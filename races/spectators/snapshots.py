"""The spectators' read side of the snapshot store (`LiveRace`, `LiveAthlete`).

The relay writes a frame's athlete states and frame number in one transaction and sends
the frame only after that commit (`races.relay.live_store`, the write side). A web
process that subscribes to a race's group and *then* reads a snapshot here gets a frame
number N such that every frame after N reaches it through the group: a late joiner on any
web process gets a correct, complete snapshot. Shapes come from `races.wire`.

All functions here are synchronous; async callers wrap them (database_sync_to_async).
"""

from __future__ import annotations

from django.db import transaction

from races import wire
from races.models import Athlete, Course, LiveAthlete, LiveRace, Race
from simulator.effort import EXPECTED_STOP_S, CourseEffort, even_effort_schedule

_EFFORTS: dict[tuple, CourseEffort] = {}  # per process: (course, its shape) -> profile


class UnknownRace(LookupError):
    """No race has this slug."""


def race_exists(slug: str) -> bool:
    return Race.objects.filter(slug=slug).exists()


def stored_progress(slug: str) -> tuple[int, str] | None:
    """The race's stored frame number and status, or None if it is gone (one query)."""
    row = Race.objects.filter(slug=slug).values_list("live__frame", "status").first()
    return None if row is None else (row[0] or 0, row[1])


def read_snapshot(slug: str) -> dict:
    """The `snapshot` message of the spectator protocol, as of one stored frame."""
    with transaction.atomic():
        race = Race.objects.select_related("course").filter(slug=slug).first()
        if race is None:
            raise UnknownRace(slug)
        live_race = LiveRace.objects.filter(race=race).first()
        stored = {
            live.athlete_id: live.state
            for live in LiveAthlete.objects.filter(race=race).only("athlete_id", "state")
        }
        athletes = [
            stored.get(a.pk) or wire.not_started_athlete(a.pk, a.bib, a.name, a.gender, a.category)
            for a in Athlete.objects.filter(race=race).order_by("pk")
        ]
        checkpoints = list(race.checkpoints.values("name", "distance_m", "kind"))
    return wire.snapshot_message(
        live_race.frame if live_race else 0,
        wire.race_summary(race, live_race.clock_s if live_race else None),
        course_summary(race, checkpoints),
        athletes,
    )


def course_summary(race: Race, checkpoints: list[dict]) -> dict | None:
    """The snapshot's `course` object (also the race API's)."""
    course = getattr(race, "course", None)
    if course is None:
        return None
    effort = course_effort(course)
    return {
        "length_m": course.length_m,
        "climb_m": course.climb_m,
        "bounds": course.bounds,
        "checkpoints": [
            {**cp, "effort": round(effort.fraction_at(cp["distance_m"]), 4)} for cp in checkpoints
        ],
        "geojson_url": f"/api/races/{race.slug}/course.geojson",
        "stop_s": EXPECTED_STOP_S,
        "ghosts": ghost_summaries(race, course, effort, checkpoints),
    }


def course_effort(course: Course) -> CourseEffort:
    """The course's effort profile (as the relay's predictor has it), built once per process.

    Each checkpoint's `effort` in the course summary is the share of the course's effort
    done there: the page turns an athlete's `eta_s` and `eta_range_s` into predicted
    passages at the checkpoints ahead with it (`static/js/follow.js`), the way
    `races.relay.prediction.passages` does, without any per-frame bytes.
    """
    key = (course.pk, course.length_m, course.climb_m, len(course.points or ()))
    effort = _EFFORTS.get(key)
    if effort is None:
        if len(_EFFORTS) > 64:
            _EFFORTS.clear()
        effort = _EFFORTS[key] = CourseEffort.of_points(course.points or [], course.length_m)
    return effort


def ghost_summaries(
    race: Race, course: Course, effort: CourseEffort, checkpoints: list[dict]
) -> list[dict]:
    """The race's ghost pacers as the snapshot's course carries them: `{"id", "name",
    "kind", "finish_s", "schedule": [[distance_m, race_s], ...]}`. Sent once; the page
    moves them with the race clock. Ghosts are not athletes: never ranked, never in results."""
    distances = {cp["name"]: cp["distance_m"] for cp in checkpoints}
    return [
        {
            "id": ghost.pk,
            "name": ghost.label,
            "kind": ghost.kind,
            "finish_s": ghost.finish_time.total_seconds(),
            "schedule": even_effort_schedule(effort, ghost.anchors(course.length_m, distances)),
        }
        for ghost in race.ghosts.all()
    ]
