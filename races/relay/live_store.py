"""Where the live state of a race is kept between processes: the database (write side).

The relay writes, per frame and in ONE transaction, the frame's positions, the new state
of every athlete the frame carries (`LiveAthlete`) and the frame number (`LiveRace`); it
sends the frame only after that commit, so a web process that subscribes to a race's
group and *then* reads a snapshot (`races.spectators.snapshots`, the read side) is never
behind the frames that follow. The relay reads the same rows to carry on after a restart
or a failover. (Why the database and not Redis: it is already there in both modes, it is
transactional with the positions, and it keeps the final state of finished races.)

All functions here are synchronous; async callers wrap them (sync_to_async).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from races.models import AthleteDecision, LiveAthlete, LiveRace, Race
from races.relay import bulk_sql
from races.relay.race_setup import new_race_state
from races.relay.race_state import Fix, RaceState
from races.relay.tracker_fixes import TrackerIntake


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
    # A tracked race's tracker rules and devices: seq-less events are its trackers' fixes.
    tracker: TrackerIntake | None = None


def load_race(slug: str) -> LoadedRace:
    """Build the race's state from its course, start list and stored live rows."""
    race = Race.objects.select_related("course").filter(slug=slug).first()
    if race is None:
        raise UnknownRace(slug)
    state = new_race_state(race)
    for live in LiveAthlete.objects.filter(race=race).only("state", "seq"):
        state.restore(live.state, live.seq)
    reconcile_decisions(race, state)
    frame = LiveRace.objects.filter(race=race).values_list("frame", flat=True).first() or 0
    return LoadedRace(
        race.pk,
        race.slug,
        race.status,
        race.generation,
        frame,
        state,
        race.clock_compression,
        tracker=None if race.simulated else TrackerIntake(state),
    )


def reconcile_decisions(race: Race, state: RaceState) -> None:
    """Apply the recorded decisions the stored state does not reflect yet.

    A decision travels to the relays on the control exchange, whose queues live only while
    a relay is connected: one sent while no relay listened would be lost. Whenever the
    relay loads a race, the newest recorded decision of each athlete is made true (it is
    idempotent), and the next frame carries what changed.
    """
    newest: dict[int, AthleteDecision] = {}
    for decision in AthleteDecision.objects.filter(race=race).order_by("decided_at", "pk"):
        newest[decision.athlete_id] = decision
    for athlete_id, decision in newest.items():
        applied = state.decision_of(athlete_id)
        if decision.kind == AthleteDecision.Kind.UNDO:
            missing = applied is not None
        else:
            missing = applied is None or applied.get("id") != decision.pk
        if missing:
            decision.race = race
            state.apply_decision(decision.message())


def store_frame(
    race_id: int,
    frame: int,
    clock_s: float | None,
    fixes: Iterable[Fix],
    athletes: Iterable[dict],
    last_seqs: dict[int, int],
) -> int:
    """Positions, athlete states and the frame number of one frame, atomically.

    A position whose (race, seq) is already stored is skipped: a redelivered message
    after a relay crash must not fail the whole batch. Returns the positions written.
    """
    positions = [
        (race_id, f.athlete_id, f.seq, f.time, f.latitude, f.longitude, f.elevation,
         f.distance_m, f.speed_mps, f.event, frame)
        for f in fixes
    ]  # fmt: skip
    live = [(a["id"], race_id, last_seqs.get(a["id"], -1), frame, a) for a in athletes]
    with transaction.atomic():
        # The same row lock reset_race takes: a reset and a late frame never interleave.
        # One round trip for the status and the stored frame: each one the storing thread
        # waits out again for the interpreter, which the relay's loop holds meanwhile.
        status, stored = (
            Race.objects.select_for_update(of=("self",))
            .filter(pk=race_id)
            .values_list("status", "live__frame")
            .first()
        ) or (None, None)
        if status not in LIVE_STATUSES:
            raise RaceNotLive(f"race {race_id} is {status or 'gone'}")
        if (stored or 0) != frame - 1:
            raise StaleFrame(f"stored frame is {stored or 0}, this one is {frame}")
        written = bulk_sql.insert_positions(positions)
        bulk_sql.upsert_live_athletes(live)
        bulk_sql.upsert_live_race(race_id, frame, clock_s, timezone.now())
    return written


def clear(race: Race) -> None:
    """Forget a race's live state (reset): the next start counts frames from 1 again."""
    LiveAthlete.objects.filter(race=race).delete()
    LiveRace.objects.filter(race=race).delete()
