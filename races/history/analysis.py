"""Post-race analysis of one athlete, or two side by side, from their stored positions.

Per leg (start to each checkpoint, to the finish): time and pace, and the time gained or
lost against the other athlete (or the winner). Over the whole track: moving and stopped
time, and the climbing and descending speed (vertical metres per hour, on the stretches
that went up or down). Splits come from the relay's results (`races.history.results`),
the rest from `Position` rows in `seq` order.
"""

from __future__ import annotations

import itertools

from races import wire
from races.history.results import race_results
from races.models import Athlete, Position, Race

# Below this speed between two positions the athlete counts as stopped (aid station,
# photo, tying a shoe): walking uphill on a steep trail is still ~0.5 m/s.
STOPPED_BELOW_MPS = 0.3
# Elevation noise: a stretch counts as climbing or descending above this grade.
MIN_GRADE = 0.02
SERIES_POINTS = 300


def movement(athlete: Athlete) -> dict:
    """Moving and stopped time, climb and descent speeds, and a thinned distance series."""
    rows = list(
        Position.objects.filter(athlete=athlete)
        .order_by("seq")
        .values_list("time", "distance_m", "elevation", "event")
    )
    moving = stopped = climb_s = descent_s = climb_m = descent_m = 0.0
    series: list[tuple[float, float]] = []
    start = rows[0][0] if rows else None
    for (t0, d0, e0, _), (t1, d1, e1, _) in itertools.pairwise(rows):
        seconds = (t1 - t0).total_seconds()
        if seconds <= 0:
            continue
        distance = d1 - d0
        if distance / seconds < STOPPED_BELOW_MPS:
            stopped += seconds
            continue
        moving += seconds
        if e0 is None or e1 is None or distance <= 0:
            continue
        rise = e1 - e0
        if rise / distance > MIN_GRADE:
            climb_s, climb_m = climb_s + seconds, climb_m + rise
        elif rise / distance < -MIN_GRADE:
            descent_s, descent_m = descent_s + seconds, descent_m - rise
    step = max(len(rows) // SERIES_POINTS, 1)
    for time, distance, _ele, _event in rows[::step] + rows[-1:]:
        series.append((round((time - start).total_seconds(), 1), round(distance, 1)))
    return {
        "moving_s": round(moving, 1),
        "stopped_s": round(stopped, 1),
        "climb_m": round(climb_m, 1),
        "climb_vm_per_h": round(climb_m / climb_s * 3600, 1) if climb_s else None,
        "descent_m": round(descent_m, 1),
        "descent_vm_per_h": round(descent_m / descent_s * 3600, 1) if descent_s else None,
        "series": series,
    }


def compare(race: Race, bib: str, versus: str | None = None) -> dict | None:
    """The analysis document of `/api/races/<slug>/analysis?bib=A&vs=B` (None: no such bib).

    Without `vs`, the winner (or the leader) is the reference; against oneself, nothing is
    gained or lost.
    """
    results = race_results(race)
    by_bib = {row["bib"]: row for row in results["results"]}
    me = by_bib.get(bib)
    if me is None:
        return None
    if versus is not None and versus not in by_bib:
        return None
    reference = by_bib[versus] if versus else results["results"][0]
    athletes = {
        a.bib: a for a in Athlete.objects.filter(race=race, bib__in={bib, reference["bib"]})
    }
    other_legs = {leg["name"]: leg for leg in reference["splits"]}
    legs = []
    for leg in me["splits"]:
        theirs = other_legs.get(leg["name"])
        legs.append(
            {
                **leg,
                "other_leg_s": theirs["leg_s"] if theirs else None,
                "gained_s": round(theirs["leg_s"] - leg["leg_s"], 1) if theirs else None,
            }
        )
    return {
        "race": wire.race_summary(race),
        "athlete": _card(me, movement(athletes[bib])),
        "versus": _card(reference, movement(athletes[reference["bib"]])),
        "legs": legs,
    }


def _card(row: dict, moved: dict) -> dict:
    keep = ("bib", "name", "gender", "category", "status", "rank", "finish_s", "distance_m")
    return {**{key: row[key] for key in keep}, "splits": row["splits"], **moved}
