"""A whole race: the events of any stretch of ticks, computed directly from the clock.

Tick k is race second ``k * tick_seconds``. Tick 0 holds the ``start`` events; tick k > 0
holds the checkpoint, finish and DNF events that happened in race time
``((k - 1) * tick, k * tick]`` and a ``running`` event for every athlete still out on the
course at ``k * tick``. ``events(after, upto)`` returns every milestone of the ticks in
``(after, upto]`` but positions only for ``upto``: a worker that falls behind, or resumes
after a crash, catches up in one step without skipping a checkpoint.

``seq`` numbers each event by (tick, athlete, kind), so it grows with publication order
and the same event always gets the same number, whatever stretch it was published in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from races.wire import build_event, exchange_name
from simulator.clock import event_time, iso_z
from simulator.geometry import Course
from simulator.pacing import DNF_RATE_PER_EFFORT_KM, AthleteSpec, draw_profile, effort_km
from simulator.timeline import Timeline


@dataclass(frozen=True)
class CheckpointSpec:
    """A timing point strictly between start and finish."""

    name: str
    distance_m: float


@dataclass(frozen=True)
class _Milestone:
    seq: int
    athlete: int
    event: str
    race_s: float
    distance_m: float
    speed_mps: float
    checkpoint: str | None = None


class RaceSimulation:
    """Deterministic events of one race, from (course, athletes, seed, tick)."""

    def __init__(
        self,
        *,
        slug: str,
        course: Course,
        checkpoints: Sequence[CheckpointSpec],
        athletes: Sequence[AthleteSpec],
        seed: int,
        tick_seconds: float,
        started_at: datetime,
        finish_name: str = "Finish",
        dnf_rate_per_effort_km: float = DNF_RATE_PER_EFFORT_KM,
    ) -> None:
        if tick_seconds <= 0:
            raise ValueError("tick_seconds must be positive")
        self.race = exchange_name(slug)
        self.course = course
        self.athletes = list(athletes)
        self.tick_seconds = float(tick_seconds)
        self.started_at = started_at
        self.finish_name = finish_name
        inside = [c for c in checkpoints if 0 < c.distance_m < course.length_m]
        self.checkpoints = sorted(inside, key=lambda c: c.distance_m)
        stop_distances = sorted({c.distance_m for c in self.checkpoints})
        course_effort = float(effort_km(course.length_m, course.climb_m))
        self.profiles = [
            draw_profile(
                seed,
                athlete,
                checkpoints=len(stop_distances),
                course_length_m=course.length_m,
                course_effort_km=course_effort,
                dnf_rate_per_effort_km=dnf_rate_per_effort_km,
            )
            for athlete in self.athletes
        ]
        self.timeline = Timeline(course, stop_distances, self.profiles)
        arrivals = self.timeline.checkpoint_arrivals()
        column = {d: i for i, d in enumerate(stop_distances)}
        self._arrivals = [arrivals[:, column[c.distance_m]] for c in self.checkpoints]
        self._arrival_speeds = [
            self.timeline.speed_before(int(self.timeline.checkpoint_knots[column[c.distance_m]]))
            for c in self.checkpoints
        ]
        self._finish_speed = self.timeline.speed_before(len(self.timeline.knots) - 1)
        self._slots = len(self.checkpoints) + 2  # start, each checkpoint, running/finish/dnf
        self.last_tick = max(self.tick_of(float(np.max(self.timeline.end_s, initial=0.0))), 1)

    def tick_of(self, race_s: float) -> int:
        """The tick whose stretch of race time contains ``race_s``."""
        return max(math.ceil(race_s / self.tick_seconds - 1e-9), 0)

    def seq(self, tick: int, athlete: int, slot: int) -> int:
        return (tick * len(self.athletes) + athlete) * self._slots + slot

    def tick_of_seq(self, seq: int) -> int:
        """The tick an event was published for, read back from its ``seq``."""
        return seq // (len(self.athletes) * self._slots)

    def events(
        self, after_tick: int, upto_tick: int, *, every_tick: bool = False
    ) -> list[dict[str, Any]]:
        """Events of the ticks in ``(after_tick, upto_tick]``, ordered by ``seq``.

        Milestones (start, checkpoints, finish, DNF) of every tick are always there; the
        running positions only of ``upto_tick``, unless ``every_tick`` asks for those of
        each tick (a worker that fell behind: replay and analysis want every position).
        """
        upto_tick = min(upto_tick, self.last_tick)
        if upto_tick <= after_tick:
            return []
        lo_s = max(after_tick, 0) * self.tick_seconds if after_tick >= 0 else -1.0
        hi_s = upto_tick * self.tick_seconds
        milestones = self._milestones(lo_s, hi_s)
        if after_tick < 0:
            milestones += [
                _Milestone(self.seq(0, i, 0), i, "start", 0.0, 0.0, 0.0)
                for i in range(len(self.athletes))
            ]
        milestones.sort(key=lambda m: m.seq)
        out = [self._milestone_event(m) for m in milestones]
        first = max(after_tick + 1, 1) if every_tick else upto_tick
        for tick in range(first, upto_tick + 1):
            if tick > 0:
                out = _merge_by_seq(out, self._running(tick))
        return out

    def _milestones(self, lo_s: float, hi_s: float) -> list[_Milestone]:
        found: list[_Milestone] = []
        last = self._slots - 1
        for c, checkpoint in enumerate(self.checkpoints):
            arrivals = self._arrivals[c]
            for i in np.flatnonzero((arrivals > lo_s) & (arrivals <= hi_s)).tolist():
                t = float(arrivals[i])
                found.append(
                    _Milestone(
                        seq=self.seq(self.tick_of(t), i, 1 + c),
                        athlete=i,
                        event="checkpoint",
                        race_s=t,
                        distance_m=round(checkpoint.distance_m, 2),
                        speed_mps=float(self._arrival_speeds[c][i]),
                        checkpoint=checkpoint.name,
                    )
                )
        tl = self.timeline
        for i in np.flatnonzero((tl.end_s > lo_s) & (tl.end_s <= hi_s)).tolist():
            t = float(tl.end_s[i])
            seq = self.seq(self.tick_of(t), i, last)
            if tl.finish_s[i] <= tl.dnf_s[i]:
                speed = float(self._finish_speed[i])
                found.append(_Milestone(seq, i, "finish", t, tl.length_m, speed, self.finish_name))
            else:
                found.append(_Milestone(seq, i, "dnf", t, round(float(tl.dnf_m[i]), 2), 0.0))
        return found

    def _milestone_event(self, m: _Milestone) -> dict[str, Any]:
        lat, lon, ele = self.course.point_at(m.distance_m)
        return build_event(
            athlete=self.athletes[m.athlete],
            race=self.race,
            event=m.event,
            seq=m.seq,
            time=iso_z(event_time(self.started_at, m.race_s)),
            latitude=round(lat, 6),
            longitude=round(lon, 6),
            elevation=round(ele, 1),
            distance_m=m.distance_m,
            speed_mps=round(m.speed_mps, 2),
            checkpoint=m.checkpoint,
            split_s=round(m.race_s, 1) if m.checkpoint is not None else None,
        )

    def _running(self, tick: int) -> list[dict[str, Any]]:
        race_s = tick * self.tick_seconds
        racing = np.flatnonzero(self.timeline.end_s > race_s)
        if racing.size == 0:
            return []
        distance, speed = self.timeline.state_at(race_s)
        distance = distance[racing]
        lat, lon, ele = self.course.locate(distance)
        # Rounded, yet never past the finish line, so no distance ever goes backwards.
        distance = np.minimum(np.round(distance, 2), self.course.length_m)
        columns = zip(
            racing.tolist(),
            np.round(lat, 6).tolist(),
            np.round(lon, 6).tolist(),
            np.round(ele, 1).tolist(),
            distance.tolist(),
            np.round(speed[racing], 2).tolist(),
            strict=True,
        )
        time = iso_z(event_time(self.started_at, race_s))
        last = self._slots - 1
        return [
            build_event(
                athlete=self.athletes[i],
                race=self.race,
                event="running",
                seq=self.seq(tick, i, last),
                time=time,
                latitude=la,
                longitude=lo,
                elevation=el,
                distance_m=d,
                speed_mps=v,
            )
            for i, la, lo, el, d, v in columns
        ]


def _merge_by_seq(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge two lists already sorted by ``seq``."""
    if not a:
        return b
    return sorted(a + b, key=lambda e: e["seq"])
