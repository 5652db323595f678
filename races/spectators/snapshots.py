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
from races.models import Athlete, LiveAthlete, LiveRace, Race


class UnknownRace(LookupError):
    """No race has this slug."""


def race_exists(slug: str) -> bool:
    return Race.objects.filter(slug=slug).exists()


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
    return {
        "length_m": course.length_m,
        "climb_m": course.climb_m,
        "bounds": course.bounds,
        "checkpoints": checkpoints,
        "geojson_url": f"/api/races/{race.slug}/course.geojson",
    }
