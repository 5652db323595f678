"""Where the live state of a race is kept between processes: the database.

The relay writes, per frame and in ONE transaction, the frame's positions, the new state
of every athlete the frame carries (`LiveAthlete`) and the frame number (`LiveRace`); it
sends the frame only after that commit. A web process that subscribes to a race's group
and *then* reads a snapshot here therefore gets a frame number N such that every frame
after N reaches it through the group: a late joiner on any web process gets a correct,
complete snapshot. The relay reads the same rows to carry on after a restart or a
failover. (Why the database and not Redis: it is already there in both modes, it is
transactional with the positions, and it keeps the final state of finished races.)

All functions here are synchronous; async callers wrap them (sync_to_async).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from races.models import Athlete, LiveAthlete, LiveRace, Race
from races.relay import bulk_sql
from races.relay.race_state import (
    AthleteSpec,
    CheckpointSpec,
    CourseLine,
    Fix,
    RaceState,
    leaderboard_sort_key,
    not_started_public,
)


class UnknownRace(LookupError):
    """No race has this slug."""


class StaleFrame(RuntimeError):
    """The stored frame is not the one before ours: another relay wrote the race (this one
    was its hot standby), or it was reset. Reload the state and apply the batch again."""


class RaceNotLive(RuntimeError):
    """The race is back to draft (reset) or not started: its live state must not be written."""


LIVE_STATUSES = (Race.Status.RUNNING, Race.Status.FINISHED, Race.Status.STOPPED)


@dataclass
class LoadedRace:
    """What the relay needs to run a race: its ids, its state, and its frame counter."""

    race_id: int
    slug: str
    status: str
    generation: int
    frame: int
    state: RaceState
    time_compression: float = 1.0


def load_race(slug: str) -> LoadedRace:
    """Build the race's state from its course, start list and stored live rows."""
    race = Race.objects.select_related("course").filter(slug=slug).first()
    if race is None:
        raise UnknownRace(slug)
    course = getattr(race, "course", None)
    athletes = [
        AthleteSpec(a.pk, a.bib, a.name, a.gender, a.category) for a in race.athletes.order_by("pk")
    ]
    checkpoints = [CheckpointSpec(cp.name, cp.distance_m, cp.kind) for cp in race.checkpoints.all()]
    state = RaceState(
        length_m=course.length_m if course else 0.0,
        checkpoints=checkpoints,
        athletes=athletes,
        start_time=race.started_at,
        course=CourseLine(course.points) if course and course.points else None,
    )
    for live in LiveAthlete.objects.filter(race=race).only("state", "seq"):
        state.restore(live.state, live.seq)
    frame = LiveRace.objects.filter(race=race).values_list("frame", flat=True).first() or 0
    return LoadedRace(
        race.pk, race.slug, race.status, race.generation, frame, state, race.time_compression
    )


def store_frame(
    race_id: int,
    frame: int,
    clock_s: float | None,
    fixes: Iterable[Fix],
    athletes: Iterable[dict],
    last_seqs: dict[int, int],
) -> None:
    """Positions, athlete states and the frame number of one frame, atomically.

    A position whose (race, seq) is already stored is skipped: a redelivered message
    after a relay crash must not fail the whole batch.
    """
    positions = [
        (race_id, f.athlete_id, f.seq, f.time, f.latitude, f.longitude, f.elevation,
         f.distance_m, f.speed_mps, f.event, frame)
        for f in fixes
    ]  # fmt: skip
    live = [(a["id"], race_id, last_seqs.get(a["id"], -1), frame, a) for a in athletes]
    with transaction.atomic():
        # The same row lock reset_race takes: a reset and a late frame never interleave.
        status = (
            Race.objects.select_for_update()
            .filter(pk=race_id)
            .values_list("status", flat=True)
            .first()
        )
        if status not in LIVE_STATUSES:
            raise RaceNotLive(f"race {race_id} is {status or 'gone'}")
        stored = LiveRace.objects.filter(race_id=race_id).values_list("frame", flat=True).first()
        if (stored or 0) != frame - 1:
            raise StaleFrame(f"stored frame is {stored or 0}, this one is {frame}")
        bulk_sql.insert_positions(positions)
        bulk_sql.upsert_live_athletes(live)
        bulk_sql.upsert_live_race(race_id, frame, clock_s, timezone.now())


def clear(race: Race) -> None:
    """Forget a race's live state (reset): the next start counts frames from 1 again."""
    LiveAthlete.objects.filter(race=race).delete()
    LiveRace.objects.filter(race=race).delete()


def race_exists(slug: str) -> bool:
    return Race.objects.filter(slug=slug).exists()


def read_snapshot(slug: str) -> dict:
    """Everything a spectator needs at once, as of one stored frame (see module doc).

    Returns the `snapshot` message of the spectator protocol minus its `type`.
    """
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
            stored.get(a.pk)
            or not_started_public(AthleteSpec(a.pk, a.bib, a.name, a.gender, a.category))
            for a in Athlete.objects.filter(race=race).order_by("pk")
        ]
        checkpoints = list(race.checkpoints.values("name", "distance_m", "kind"))
    athletes.sort(key=leaderboard_sort_key)
    return {
        "frame": live_race.frame if live_race else 0,
        "race": race_summary(race, live_race.clock_s if live_race else None),
        "course": course_summary(race, checkpoints),
        "athletes": athletes,
    }


def race_summary(race: Race, clock_s: float | None = None) -> dict:
    return {
        "slug": race.slug,
        "name": race.name,
        "status": race.status,
        "started_at": _iso(race.started_at),
        "finished_at": _iso(race.finished_at),
        "time_compression": race.time_compression,
        "clock_s": clock_s,
    }


def course_summary(race: Race, checkpoints: list[dict]) -> dict | None:
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


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
