"""An athlete's recorded GPX joins a tracked race after the fact (their tracker failed).

- While the race runs, its points go through the race's fanout like a tracker's fixes
  (source `gpx`, seq-less): the relay places them as it places any late batch.
- Once the race is over (finished or stopped) no relay consumes it any more, so the points
  are stored here as `Position` rows, exactly as the relay would have stored them: seq
  from `wire.tracker_seq`, distance along the course by the relay's own `RaceState`
  (forward-only snapping, `races.relay.course_line`), replayed with the athlete's stored
  positions in seq order. The race's stored state (`LiveAthlete`, `LiveRace`) gets one
  more frame (`live_store.store_frame`, the relay's atomic write), so results, replay and
  snapshots all include the athlete.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from races import wire
from races.history import timeline
from races.models import Athlete, LiveAthlete, LiveRace, Position, Race
from races.organizer.gpx import GPXError, RecordedPoint, parse_recording
from races.relay import live_store
from races.relay.race_setup import new_race_state
from races.trackers import ingest
from simulator.clock import iso_z

PUBLISH_BATCH = 500
OVER = (Race.Status.FINISHED, Race.Status.STOPPED)


class RecordingRefused(ValueError):
    """The recording cannot join the race; the message says why, for the organizer."""


def join(athlete: Athlete, data: bytes) -> str:
    """Add the recording's points to the athlete's race; a summary of what was done."""
    race = Race.objects.select_related("course").get(pk=athlete.race_id)
    if race.tracking != Race.Tracking.TRACKED:
        raise RecordingRefused(f"{race.name} is simulated: only tracked races take recordings.")
    if race.started_at is None or race.status not in (Race.Status.RUNNING, *OVER):
        raise RecordingRefused(f"{race.name} has not started: nothing to join the points to.")
    try:
        recorded = parse_recording(data)
    except GPXError as error:
        raise RecordingRefused(str(error)) from error
    until = race.finished_at if race.status in OVER and race.finished_at else timezone.now()
    points = [p for p in recorded if race.started_at <= p.time <= until + timedelta(minutes=1)]
    if not points:
        raise RecordingRefused(
            f"None of the {len(recorded)} points falls between the race's start "
            f"({iso_z(race.started_at)}) and {'its end' if race.status in OVER else 'now'}."
        )
    skipped = len(recorded) - len(points)
    note = f" ({skipped} outside the race's time skipped)" if skipped else ""
    if race.status == Race.Status.RUNNING:
        events = [_event(athlete, race, point) for point in points]
        for start in range(0, len(events), PUBLISH_BATCH):
            try:
                ingest.publish(race, events[start : start + PUBLISH_BATCH], "gpx")
            except ingest.Refused as refused:  # the broker did not confirm
                raise RecordingRefused(
                    f"{start} of {len(events)} points published, then: {refused.message}. "
                    "Upload it again: points already published are stored once."
                ) from refused
        return f"{len(events)} points published into the live race{note}"
    try:
        stored = store_after_the_fact(race, athlete, points)
    except (live_store.StaleFrame, live_store.RaceNotLive) as error:
        raise RecordingRefused(f"The race changed meanwhile ({error}): try again.") from error
    return f"{stored} points added to the race's positions and results{note}"


def _event(athlete: Athlete, race: Race, point: RecordedPoint) -> dict:
    return wire.build_tracker_event(
        athlete=ingest.TrackedAthlete(athlete.name, athlete.gender, athlete.bib, athlete.pk),
        slug=race.slug,
        source="gpx",
        time=iso_z(point.time),
        latitude=point.latitude,
        longitude=point.longitude,
        elevation=point.elevation,
    )


def store_after_the_fact(race: Race, athlete: Athlete, points: list[RecordedPoint]) -> int:
    """Store the points of a race that is over as the relay would have; positions written."""
    state = new_race_state(race)
    for live in LiveAthlete.objects.filter(race=race).exclude(athlete=athlete):
        state.restore(live.state, live.seq)
    columns = ("seq", "time", "latitude", "longitude", "elevation", "distance_m", "speed_mps",
               "event")  # fmt: skip
    replay: dict[int, tuple[dict, bool]] = {}
    for seq, time, lat, lon, ele, distance, speed, kind in Position.objects.filter(
        race=race, athlete=athlete
    ).values_list(*columns):
        event = {"athlete_id": athlete.pk, "seq": seq, "event": kind, "time": iso_z(time),
                 "location": {"latitude": lat, "longitude": lon}, "elevation": ele,
                 "distance_m": distance, "speed_mps": speed}  # fmt: skip
        replay[seq] = (event, False)
    for point in points:
        event = _event(athlete, race, point)
        seq = wire.tracker_seq(athlete.pk, point.time)
        replay.setdefault(seq, ({**event, "seq": seq}, True))  # a stored one wins
    fresh = []
    for seq in sorted(replay):
        event, new = replay[seq]
        fix = state.apply(event)
        if fix is not None and new:
            fresh.append(fix)
    live_store.reconcile_decisions(race, state)
    had_rows = set(LiveAthlete.objects.filter(race=race).values_list("athlete_id", flat=True))
    athletes = [a for a in state.leaderboard() if a["id"] in had_rows or a["id"] == athlete.pk]
    frame = (LiveRace.objects.filter(race=race).values_list("frame", flat=True).first() or 0) + 1
    written = live_store.store_frame(
        race.pk, frame, state.clock_s, fresh, athletes, state.last_seqs()
    )
    timeline.forget(race.pk)  # this process's replay cache; others reload on the new frame
    return written
