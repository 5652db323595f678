"""Rank numbers and time gaps of a race's athletes, given them in leaderboard order.

The order itself is `AthleteState.sort_key` (which follows `races.wire.leaderboard_sort_key`);
this module numbers it: only finished and running athletes get a rank (overall, in their
gender, in their category), and a gap to the leader in seconds: how much later the athlete
reached their current distance than the leader did (the leader's passage times are
interpolated between the leader's splits and current position); finished athletes compare
finish times.
"""

from __future__ import annotations

from bisect import bisect_left

from races.relay.athlete_state import AthleteState
from races.wire import FINISHED, RUNNING

PassageTimes = tuple[list[float], list[float]]


def assign_ranks_and_gaps(order: list[AthleteState]) -> None:
    """Set rank, rank_gender, rank_category and gap_s of every athlete of `order` (sorted);
    an athlete whose values change loses its cached public form."""
    leader = order[0] if order else None
    leader_times = leader_passage_times(leader)
    rank = 0
    per_gender: dict[str, int] = {}
    per_category: dict[str, int] = {}
    for athlete in order:
        if athlete.status not in (FINISHED, RUNNING):
            ranking = (None, None, None, None)
        else:
            rank += 1
            gender, category = athlete.spec.gender, athlete.spec.category
            per_gender[gender] = per_gender.get(gender, 0) + 1
            per_category[category] = per_category.get(category, 0) + 1
            ranking = (
                rank,
                per_gender[gender],
                per_category[category] if category else None,
                gap_to_leader(athlete, leader, leader_times),
            )
        if ranking != (athlete.rank, athlete.rank_gender, athlete.rank_category, athlete.gap_s):
            athlete.rank, athlete.rank_gender, athlete.rank_category, athlete.gap_s = ranking
            athlete.public = None


def leader_passage_times(leader: AthleteState | None) -> PassageTimes | None:
    """(distances, race seconds) at which the leader passed each split and is now; None
    when nobody leads (no athlete running or finished)."""
    if leader is None or leader.status not in (FINISHED, RUNNING):
        return None
    distances, times = [0.0], [0.0]
    for split in leader.splits:
        if split["distance_m"] > distances[-1]:
            distances.append(split["distance_m"])
            times.append(split["split_s"])
    if leader.status == RUNNING and leader.distance_m > distances[-1]:
        distances.append(leader.distance_m)
        times.append(leader.elapsed_s or 0.0)
    return distances, times


def gap_to_leader(
    athlete: AthleteState, leader: AthleteState | None, leader_times: PassageTimes | None
) -> float | None:
    """Seconds the athlete is behind the leader at the athlete's own distance."""
    if leader_times is None or athlete is leader:
        return 0.0 if leader_times is not None else None
    if athlete.status == FINISHED:
        return round(athlete.finish_s - leader.finish_s, 1)
    distances, times = leader_times
    at = athlete.distance_m
    i = bisect_left(distances, at)
    if i >= len(distances):
        leader_time = times[-1]
    elif distances[i] == at or i == 0:
        leader_time = times[i]
    else:
        d0, d1, t0, t1 = distances[i - 1], distances[i], times[i - 1], times[i]
        leader_time = t0 + (at - d0) / (d1 - d0) * (t1 - t0)
    return round(max((athlete.elapsed_s or 0.0) - leader_time, 0.0), 1)
