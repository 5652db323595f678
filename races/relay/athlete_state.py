"""One athlete inside the race state, and their public form (the protocol's ATHLETE).

The shape and rounding of the public form are the wire contract's (`races.wire`); what
is computed here is what only the race state knows: the average pace, and the predicted
finish with its 80 % band (`races.relay.prediction`, a pure function of the athlete's
elapsed time and distance and the course's effort profile, so replay agrees with live).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from races import wire
from races.relay.prediction import predict
from races.wire import DNS, FINISHED, NOT_STARTED, RUNNING
from simulator.effort import CourseEffort


@dataclass(frozen=True, slots=True)
class CheckpointSpec:
    name: str
    distance_m: float
    kind: str = "checkpoint"


@dataclass(frozen=True, slots=True)
class AthleteSpec:
    id: int
    bib: str
    name: str
    gender: str
    category: str = ""


class AthleteState:
    """One athlete as the race state tracks it (mutable; the race state owns it)."""

    __slots__ = (
        "decision",
        "distance_m",
        "elapsed_s",
        "elevation",
        "finish_s",
        "gap_s",
        "last_seq",
        "latitude",
        "longitude",
        "next_checkpoint",
        "public",
        "published",
        "published_ranking",
        "rank",
        "rank_category",
        "rank_gender",
        "sort_bib",
        "spec",
        "speed_mps",
        "splits",
        "splits_changed",
        "status",
        "time",
        "time_text",
    )

    def __init__(self, spec: AthleteSpec) -> None:
        self.spec = spec
        self.sort_bib = wire.bib_order(spec.bib)
        self.status = NOT_STARTED
        self.distance_m = 0.0
        self.elapsed_s: float | None = None
        self.latitude: float | None = None
        self.longitude: float | None = None
        self.elevation: float | None = None
        self.speed_mps: float | None = None
        self.time: datetime | None = None
        self.time_text: str | None = None
        self.finish_s: float | None = None
        self.last_seq = -1
        self.splits: list[dict] = []
        self.next_checkpoint = 0  # index into the race's intermediate checkpoints
        self.splits_changed = False
        self.rank: int | None = None
        self.rank_gender: int | None = None
        self.rank_category: int | None = None
        self.gap_s: float | None = None
        self.published_ranking: tuple = (None, None, None, None)
        self.published: dict | None = None  # the public form the last frame was built from
        self.public: dict | None = None
        self.decision: dict | None = None  # race control decision (wire_decisions)

    def sort_key(self) -> tuple:
        """The race state's order (finer than the public one: finish time, distance,
        arrival time); ranks are numbered in this order."""
        if self.status == FINISHED:
            return (0, self.finish_s, 0.0, self.sort_bib)
        if self.status == RUNNING:
            return (1, -self.distance_m, self.elapsed_s or 0.0, self.sort_bib)
        if self.status == NOT_STARTED:
            return (2, 0.0, 0.0, self.sort_bib)
        if self.status == DNS:
            return (4, 0.0, 0.0, self.sort_bib)
        return (3, -self.distance_m, 0.0, self.sort_bib)


def public_form(
    athlete: AthleteState, length_m: float, effort: CourseEffort, timing_points: int = 0
) -> dict:
    """An athlete as the spectator protocol's ATHLETE object (races.wire.public_athlete);
    `timing_points`: the race's intermediate checkpoints (a stop each, for the prediction)."""
    spec = athlete.spec
    pace = eta = band = None
    if athlete.status == FINISHED and athlete.finish_s is not None and length_m > 0:
        pace, eta = athlete.finish_s / (length_m / 1000.0), 0.0
    elif athlete.status == RUNNING and athlete.distance_m >= 100.0 and athlete.elapsed_s:
        pace = athlete.elapsed_s / (athlete.distance_m / 1000.0)
        passed = min(athlete.next_checkpoint, timing_points)
        predicted = predict(
            effort, athlete.elapsed_s, athlete.distance_m, passed, timing_points - passed
        )
        if predicted is not None:
            eta, band = predicted.eta_s, (predicted.low_s, predicted.high_s)
    return wire.public_athlete(
        id=spec.id,
        bib=spec.bib,
        name=spec.name,
        gender=spec.gender,
        category=spec.category,
        lat=athlete.latitude,
        lon=athlete.longitude,
        ele=athlete.elevation,
        distance_m=athlete.distance_m,
        speed_mps=athlete.speed_mps,
        status=athlete.status,
        rank=athlete.rank,
        rank_gender=athlete.rank_gender,
        rank_category=athlete.rank_category,
        gap_s=athlete.gap_s,
        pace_s_per_km=pace,
        eta_s=eta,
        eta_range_s=band,
        elapsed_s=athlete.elapsed_s,
        splits=athlete.splits,
        time=athlete.time_text,
        decision=athlete.decision,
    )
