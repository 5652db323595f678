"""Live state of one race: where every athlete is along the course, and the leaderboard.

Plain Python (no Django, no I/O), so it is fast and testable on its own. The relay feeds it
contract events (see DESIGN.md, "wire contract") one at a time with `RaceState.apply`, and
a few times a second asks `RaceState.take_changes` for the athletes a frame must carry.

Distance along the course: events from the simulator carry `distance_m`, taken as is;
events without it (real trackers) are snapped onto the course forward only
(`races.relay.course_line`). Distance never decreases. Events are checked field by field
in `races.relay.events`; the public form of an athlete is `races.relay.athlete_state`'s.

Ranking: finished athletes by finish time, then running athletes by distance (earlier
arrival first on a tie), then those not started, then DNF; rank numbers and time gaps are
given in `races.relay.ranking`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from races import wire
from races.relay import events
from races.relay.athlete_state import AthleteSpec, AthleteState, CheckpointSpec, public_form
from races.relay.course_line import CourseLine
from races.relay.events import InvalidEvent
from races.relay.ranking import assign_ranks_and_gaps
from races.wire import DNF, DNS, FINISHED, NOT_STARTED, RUNNING
from races.wire_decisions import DECISION_KINDS, DECISION_PUBLIC_KEYS
from simulator.effort import CourseEffort

BACKTRACK_M = 50.0  # snapping may look this far behind the last distance (GPS noise)
REACH_SLACK_M = 200.0
SNAPPED_FINISH_RADIUS_M = 20.0
# Distances arrive rounded (the simulator sends centimetres); a checkpoint this close
# ahead counts as reached.
CHECKPOINT_TOLERANCE_M = 0.5
DEFAULT_MAX_SPEED_MPS = 12.0


@dataclass(frozen=True, slots=True)
class Fix:
    """A position the relay stores: the event, validated, with its distance along course."""

    athlete_id: int
    seq: int
    time: datetime
    latitude: float
    longitude: float
    elevation: float | None
    distance_m: float
    speed_mps: float | None
    event: str
    # An older position that arrived after a newer one (a redelivery after a relay or
    # node failure): stored, but the athlete is not moved back (see RaceState.apply).
    history: bool = False


@dataclass(frozen=True, slots=True)
class FrameChanges:
    """The athletes one frame carries: `full` to store, `wire` to send (see take_changes),
    and `previous`: the public form each athlete of `wire` had in the frame before (none
    for an athlete published for the first time), what the compact protocol's deltas are
    taken against."""

    full: list[dict]
    wire: list[dict]
    previous: dict[int, dict]


class RaceState:
    """Everything the relay knows about one running race, updated event by event."""

    def __init__(
        self,
        *,
        length_m: float,
        checkpoints: Iterable[CheckpointSpec],
        athletes: Iterable[AthleteSpec],
        start_time: datetime | None = None,
        course: CourseLine | None = None,
        effort: CourseEffort | None = None,
        max_speed_mps: float = DEFAULT_MAX_SPEED_MPS,
    ) -> None:
        self.length_m = float(length_m)
        # Without an elevation profile effort is distance: the prediction is the pace so far.
        self.effort = effort or CourseEffort.flat(self.length_m)
        self.start_time = start_time
        self.course = course
        self.max_speed_mps = max_speed_mps
        ordered = sorted(checkpoints, key=lambda cp: cp.distance_m)
        self.finish_checkpoint = next((cp for cp in ordered if cp.kind == "finish"), None)
        self._timing_points = [cp for cp in ordered if cp.kind == "checkpoint"]
        self._athletes: dict[int, AthleteState] = {a.id: AthleteState(a) for a in athletes}
        self._by_bib = {a.spec.bib: a for a in self._athletes.values()}
        self._by_name = {a.spec.name: a for a in self._athletes.values()}
        self._order: list[AthleteState] = sorted(self._athletes.values(), key=AthleteState.sort_key)
        self._moved: set[int] = set()
        self._ranking_stale = True
        self.latest_time: datetime | None = None

    # ---- input -------------------------------------------------------------------------

    def apply(self, event: Mapping) -> Fix | None:
        """Take one contract event into the state.

        Returns the validated `Fix` to store, or None for a duplicate (the athlete's newest
        `seq` again). An event older than the athlete's newest is returned as a `history`
        fix: stored, the athlete not moved back. It is new when its delivery was overtaken
        (measured: a relay crash with redelivery lost 7 of 200 positions when such events
        were dropped), and a duplicate when it was stored before; the database's unique
        (race, seq) key tells the two apart (`live_store.store_frame` counts what it
        skipped), so no set of every seq seen is kept in memory. Raises InvalidEvent
        when the event is unusable (unknown athlete, missing fields, impossible values).
        """
        athlete = self._find_athlete(event)
        seq = events.required_int(event, "seq")
        if seq == athlete.last_seq:
            return None
        if seq < athlete.last_seq:
            return self._history(athlete, event, seq)
        kind = events.kind(event)
        time_text = event.get("time")
        time = events.parse_time(time_text)
        latitude, longitude = events.location(event)
        elevation = events.optional_float(event, "elevation")
        speed = events.optional_float(event, "speed_mps")
        if self.start_time is None:
            self.start_time = time
        elapsed = (time - self.start_time).total_seconds()

        athlete.last_seq = seq
        if athlete.status in (FINISHED, DNF, DNS) or athlete.decision is not None:
            # Trackers keep sending after the line (or after race control's decision);
            # store those positions, change nothing.
            return Fix(athlete.spec.id, seq, time, latitude, longitude, elevation,
                       athlete.distance_m, speed, kind)  # fmt: skip

        distance = self._distance(athlete, event, latitude, longitude, time)
        self._record_splits(athlete, distance, elapsed)
        athlete.latitude, athlete.longitude, athlete.elevation = latitude, longitude, elevation
        athlete.speed_mps = speed
        athlete.time, athlete.time_text, athlete.elapsed_s = time, str(time_text), elapsed
        athlete.distance_m = distance
        if kind == "dnf":
            athlete.status = DNF
        elif kind == "finish" or self._reached_finish(event, distance):
            self._finish(athlete, elapsed)
        else:
            athlete.status = RUNNING
        if self.latest_time is None or time > self.latest_time:
            self.latest_time = time
        self._touch(athlete)
        return Fix(athlete.spec.id, seq, time, latitude, longitude, elevation,
                   athlete.distance_m, speed, kind)  # fmt: skip

    def _history(self, athlete: AthleteState, event: Mapping, seq: int) -> Fix:
        """An older position, validated like any other, that changes nothing in the state."""
        kind = events.kind(event)
        time = events.parse_time(event.get("time"))
        latitude, longitude = events.location(event)
        given = events.optional_float(event, "distance_m")
        if given is not None:
            distance = min(max(given, 0.0), self.length_m, athlete.distance_m)
        elif self.course is not None:
            snapped = self.course.snap(latitude, longitude, 0.0, athlete.distance_m)
            distance = athlete.distance_m if snapped is None else snapped
        else:
            distance = athlete.distance_m
        return Fix(athlete.spec.id, seq, time, latitude, longitude,
                   events.optional_float(event, "elevation"), distance,
                   events.optional_float(event, "speed_mps"), kind, history=True)  # fmt: skip

    def restore(self, public: Mapping, last_seq: int) -> None:
        """Put back an athlete's state from its stored public form (a relay restart)."""
        athlete = self._athletes.get(public["id"])
        if athlete is None:
            return
        athlete.last_seq = last_seq
        athlete.status = public["status"]
        athlete.distance_m = float(public["distance_m"] or 0.0)
        athlete.latitude, athlete.longitude = public.get("lat"), public.get("lon")
        athlete.elevation, athlete.speed_mps = public.get("ele"), public.get("speed_mps")
        athlete.time_text = public.get("time")
        athlete.time = events.parse_time(athlete.time_text) if athlete.time_text else None
        athlete.elapsed_s = public.get("elapsed_s")
        athlete.splits = [dict(split) for split in public.get("splits") or []]
        passed = {split["name"] for split in athlete.splits}
        athlete.next_checkpoint = sum(1 for cp in self._timing_points if cp.name in passed)
        if athlete.status == FINISHED:
            athlete.finish_s = athlete.splits[-1]["split_s"] if athlete.splits else None
            if athlete.finish_s is None:
                athlete.finish_s = athlete.elapsed_s
        if athlete.time and (self.latest_time is None or athlete.time > self.latest_time):
            self.latest_time = athlete.time
        athlete.decision = public.get("decision")
        athlete.public = None
        self._ranking_stale = True

    # ---- race control's decisions (wire_decisions.decision_message) -------------------

    def apply_decision(self, decision: Mapping) -> None:
        """Set (or, for `undo`, clear) an athlete's decision: DNS, DNF or a finish time.

        Idempotent: the decision replaces whatever decision the athlete had, starting from
        the state the events gave them (kept in the decision as `was`), so applying the
        same message twice, or a batch again after a failover, ends in the same state.
        Raises InvalidEvent for an unknown athlete or kind, or a bad finish time.
        """
        athlete = self._find_athlete(decision)
        kind = decision.get("kind")
        if kind not in DECISION_KINDS:
            raise InvalidEvent(f"unknown decision {kind!r}")
        finish_s = None
        if kind == "finish_time":
            finish_s = events.optional_float(decision, "finish_s")
            if finish_s is None or finish_s <= 0:
                raise InvalidEvent("a finish time correction needs finish_s > 0")
        if athlete.decision is not None:
            self._return_to_tracked(athlete, athlete.decision["was"])
        if kind == "undo":
            athlete.decision = None
        else:
            was = {
                "status": athlete.status,
                "distance_m": athlete.distance_m,
                "finish_s": athlete.finish_s,
                "splits": [dict(split) for split in athlete.splits],
            }
            athlete.decision = {key: decision.get(key) for key in DECISION_PUBLIC_KEYS}
            athlete.decision["was"] = was
            if kind == "dns":
                athlete.status = DNS
            elif kind == "dnf":
                athlete.status = DNF
            else:
                self._set_finish_time(athlete, finish_s)
        self._touch(athlete)

    def decision_of(self, athlete_id: int) -> dict | None:
        """The athlete's decision in force (None: none, or not on the start list)."""
        athlete = self._athletes.get(athlete_id)
        return None if athlete is None else athlete.decision

    def _return_to_tracked(self, athlete: AthleteState, was: Mapping) -> None:
        athlete.status = was["status"]
        athlete.distance_m = float(was["distance_m"] or 0.0)
        athlete.finish_s = was["finish_s"]
        athlete.splits[:] = [dict(split) for split in was["splits"]]
        athlete.splits_changed = True

    def _set_finish_time(self, athlete: AthleteState, finish_s: float) -> None:
        if athlete.status == FINISHED and athlete.splits:
            # A new dict, not the old one changed: the last frame's form holds the old one
            # as `last_checkpoint`, and an update carries it only if the two differ.
            athlete.splits[-1] = {**athlete.splits[-1], "split_s": round(finish_s, 1)}
            athlete.splits_changed = True
            athlete.status, athlete.finish_s = FINISHED, finish_s
        else:
            self._finish(athlete, finish_s)

    # ---- output ------------------------------------------------------------------------

    def take_changes(self) -> FrameChanges:
        """Athletes to put in the next frame: those that moved, and those whose rank or gap
        changed because others moved. `full` has their whole public form (to store);
        `wire` only `id` and the fields that changed since the last frame (clients and
        hubs merge athlete objects by id), so an update is a fraction of a snapshot."""
        self._rerank()
        full, sent, previous = [], [], {}
        for athlete in self._order:
            ranking = (athlete.rank, athlete.rank_gender, athlete.rank_category, athlete.gap_s)
            if athlete.spec.id not in self._moved and ranking == athlete.published_ranking:
                continue
            athlete.published_ranking = ranking
            public = self._public(athlete)
            full.append(public)
            changed = wire.athlete_changes(athlete.published, public, athlete.splits_changed)
            athlete.splits_changed = False
            if len(changed) > 1:
                sent.append(changed)
                if athlete.published is not None:
                    previous[athlete.spec.id] = athlete.published
            athlete.published = public
        self._moved.clear()
        return FrameChanges(full, sent, previous)

    def leaderboard(self) -> list[dict]:
        """Every athlete, full public form (with splits), in leaderboard order."""
        self._rerank()
        return [self._public(athlete) for athlete in self._order]

    def athlete(self, athlete_id: int) -> AthleteState | None:
        """An athlete's state to read (its `last_seq`, the tracker intake's checks), or None."""
        return self._athletes.get(athlete_id)

    def roster(self) -> list[AthleteSpec]:
        return [a.spec for a in self._athletes.values()]

    def last_seqs(self) -> dict[int, int]:
        return {a.spec.id: a.last_seq for a in self._athletes.values() if a.last_seq >= 0}

    def out_on_course(self) -> int:
        """How many athletes the race still hears from: started or not, not finished, not
        out, no decision of race control's (a simulation tick has one event from each)."""
        return sum(
            1
            for a in self._athletes.values()
            if a.status in (RUNNING, NOT_STARTED) and a.decision is None
        )

    @property
    def everyone_done(self) -> bool:
        """True once every athlete on the start list has finished or dropped out."""
        return bool(self._athletes) and all(
            a.status in (FINISHED, DNF, DNS) for a in self._athletes.values()
        )

    @property
    def clock_s(self) -> float | None:
        """Race-clock seconds of the newest event seen."""
        if self.latest_time is None or self.start_time is None:
            return None
        return round((self.latest_time - self.start_time).total_seconds(), 1)

    # ---- internals ---------------------------------------------------------------------

    def _find_athlete(self, event: Mapping) -> AthleteState:
        reference = events.athlete_reference(event)
        kind, value = reference if reference is not None else ("", None)
        if kind == "id":
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidEvent(f"athlete_id must be an integer, not {value!r:.40}")
            athlete = self._athletes.get(value)
        else:
            athlete = (self._by_bib if kind == "bib" else self._by_name).get(value)
        if athlete is None:
            raise InvalidEvent(
                f"athlete not on the start list: id={event.get('athlete_id')!r} "
                f"bib={event.get('bib')!r} name={event.get('athlete')!r}"
            )
        return athlete

    def _distance(
        self, athlete: AthleteState, event: Mapping, lat: float, lon: float, time: datetime
    ) -> float:
        previous = athlete.distance_m
        given = events.optional_float(event, "distance_m")
        if given is not None:
            return max(previous, min(given, self.length_m))
        if event.get("event") == "start":
            return previous
        if self.course is None:
            raise InvalidEvent("event has no distance_m and the race has no course to snap to")
        since = athlete.time or self.start_time or time
        reach = self.max_speed_mps * max((time - since).total_seconds(), 0.0) + REACH_SLACK_M
        snapped = self.course.snap(lat, lon, previous - BACKTRACK_M, previous + reach)
        return previous if snapped is None else max(previous, snapped)

    def _reached_finish(self, event: Mapping, distance: float) -> bool:
        if event.get("distance_m") is not None:
            return distance >= self.length_m
        return distance >= self.length_m - SNAPPED_FINISH_RADIUS_M

    def _record_splits(self, athlete: AthleteState, distance: float, elapsed: float) -> None:
        before = athlete.distance_m
        previous_elapsed = athlete.elapsed_s if athlete.elapsed_s is not None else 0.0
        timing = self._timing_points
        while athlete.next_checkpoint < len(timing):
            checkpoint = timing[athlete.next_checkpoint]
            if checkpoint.distance_m > distance + CHECKPOINT_TOLERANCE_M:
                break
            span = distance - before
            fraction = (
                1.0 if span <= 0 else min(max((checkpoint.distance_m - before) / span, 0.0), 1.0)
            )
            split = previous_elapsed + fraction * (elapsed - previous_elapsed)
            self._add_split(athlete, checkpoint.name, checkpoint.distance_m, split)
            athlete.next_checkpoint += 1

    def _finish(self, athlete: AthleteState, elapsed: float) -> None:
        athlete.status = FINISHED
        athlete.distance_m = self.length_m
        athlete.finish_s = elapsed
        name = self.finish_checkpoint.name if self.finish_checkpoint else "Finish"
        self._add_split(athlete, name, self.length_m, elapsed)

    @staticmethod
    def _add_split(athlete: AthleteState, name: str, distance: float, split: float) -> None:
        athlete.splits.append(
            {"name": name, "distance_m": round(distance, 1), "split_s": round(split, 1)}
        )
        athlete.splits_changed = True

    def _touch(self, athlete: AthleteState) -> None:
        athlete.public = None
        self._moved.add(athlete.spec.id)
        self._ranking_stale = True

    def _rerank(self) -> None:
        if self._ranking_stale:
            self._ranking_stale = False
            self._order.sort(key=AthleteState.sort_key)
            assign_ranks_and_gaps(self._order)

    def _public(self, athlete: AthleteState) -> dict:
        if athlete.public is None:
            checkpoints = len(self._timing_points)
            athlete.public = public_form(athlete, self.length_m, self.effort, checkpoints)
        return athlete.public
