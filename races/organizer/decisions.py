"""Race control's decisions: DNS, DNF (with a reason), a corrected finish time, and undo.

The web side records the decision (who, when, why: `AthleteDecision`) and, once that
commits, the deployment's `lifecycle.on_decided` hook sends it to the relay, which alone
owns race state: it applies it, stores the athlete's new state and sends it in the next
numbered frame (`RaceState.apply_decision`). Decisions apply to a running race and to a
finished or stopped one (results corrections), never to a race that has not started.
"""

from __future__ import annotations

import math

from django.db import transaction

from races.models import Athlete, AthleteDecision, Race
from races.organizer import lifecycle

Kind = AthleteDecision.Kind
DECIDABLE_STATUSES = (Race.Status.RUNNING, Race.Status.FINISHED, Race.Status.STOPPED)
MAX_FINISH_S = 30 * 24 * 3600.0
MAX_REASON = AthleteDecision._meta.get_field("reason").max_length


class DecisionRefused(ValueError):
    """A decision race control does not take; the message says why and what to do."""


def active_decisions(race: Race) -> dict[int, AthleteDecision]:
    """Per athlete id, the decision in force (the newest row, unless it is an undo)."""
    active: dict[int, AthleteDecision] = {}
    seen: set[int] = set()
    for decision in race.decisions.order_by("-decided_at", "-pk"):
        if decision.athlete_id in seen:
            continue
        seen.add(decision.athlete_id)
        if decision.kind != Kind.UNDO:
            active[decision.athlete_id] = decision
    return active


def decide(
    race: Race,
    athlete: Athlete,
    kind: str,
    *,
    by: str,
    reason: str = "",
    finish_s: float | None = None,
) -> AthleteDecision:
    """Record a DNS, DNF or finish-time decision and send it to the relay (on commit)."""
    _check_race(race, athlete)
    reason = reason.strip()
    if kind not in (Kind.DNS, Kind.DNF, Kind.FINISH_TIME):
        raise DecisionRefused(f"Unknown decision {kind!r}: choose DNS, DNF or a finish time.")
    if kind == Kind.DNF and not reason:
        raise DecisionRefused("A DNF needs a reason (e.g. 'retired at CP2, knee').")
    if kind == Kind.FINISH_TIME:
        if finish_s is None or not math.isfinite(finish_s) or not 0 < finish_s < MAX_FINISH_S:
            raise DecisionRefused("Enter the finish time as H:MM:SS of race clock, above zero.")
    else:
        finish_s = None
    return _record(race, athlete, kind, by=by, reason=reason, finish_s=finish_s)


def undo(race: Race, athlete: Athlete, *, by: str, reason: str = "") -> AthleteDecision:
    """Take back the athlete's decision in force: they return to what their tracker says."""
    _check_race(race, athlete)
    active = active_decisions(race).get(athlete.pk)
    if active is None:
        raise DecisionRefused(f"{athlete} has no decision to undo.")
    return _record(race, athlete, Kind.UNDO, by=by, reason=reason.strip(), undoes=active)


def parse_race_time(text: str) -> float:
    """'3:25:07', '25:07' or '1507' (seconds) as race-clock seconds."""
    parts = text.strip().split(":")
    try:
        numbers = [float(part) for part in parts]
    except ValueError as error:
        raise DecisionRefused(f"{text!r} is not a time: write H:MM:SS, e.g. 3:25:07.") from error
    if len(numbers) > 3 or any(n < 0 or not math.isfinite(n) for n in numbers):
        raise DecisionRefused(f"{text!r} is not a time: write H:MM:SS, e.g. 3:25:07.")
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def _check_race(race: Race, athlete: Athlete) -> None:
    if athlete.race_id != race.pk:
        raise DecisionRefused(f"{athlete} is not on the start list of {race}.")
    if race.status not in DECIDABLE_STATUSES:
        raise DecisionRefused(
            f"{race} is {race.get_status_display().lower()}: decisions apply once it has started."
        )


def _record(race: Race, athlete: Athlete, kind: str, *, by: str, **fields) -> AthleteDecision:
    if len(fields.get("reason", "")) > MAX_REASON:
        raise DecisionRefused(f"Keep the reason under {MAX_REASON} characters.")
    with transaction.atomic():
        decision = AthleteDecision.objects.create(
            race=race, athlete=athlete, kind=kind, decided_by=by, **fields
        )
        for hook in lifecycle.on_decided:
            transaction.on_commit(lambda hook=hook: hook(decision))
    return decision
