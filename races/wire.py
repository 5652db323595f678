"""The wire contract: every name and message shape the live pipeline's parts agree on.

Plain Python (no Django): the simulator, the relay, the web's hubs and sockets, the bench
and the tests all spell the contract through this module, so a name or a field changes
in one place. The browser's copy of the merge rule is `static/js/state.js`; the
conformance test (`tests/test_wire_conformance.py`) holds both to the same recorded races.

- Names: a race's fanout exchange `race-<slug>` (also the events' `race` field), the
  relay's queue `relay.race-<slug>`, the spectators' layer group `race.<slug>`, the race
  list's group, the seed-compatible sockets' group, the relays' control exchange.
- Messages: the position event on the fanout (DESIGN.md), and the spectator protocol's
  `snapshot`, `update`, `race` and `pong` (docs/ARCHITECTURE.md).
- The athlete's public form (ATHLETE), the leaderboard order, and the merge rule of an
  update: an athlete in an update carries `id` and only the fields that changed; it is
  merged by id into what the receiver holds (`athlete_changes` is the sender's side of
  the same rule, `merge_update` the receiver's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import orjson

# ---- names -----------------------------------------------------------------------------

EXCHANGE_PREFIX = "race-"
RELAY_QUEUE_PREFIX = "relay." + EXCHANGE_PREFIX
CONTROL_EXCHANGE = "raceweb.control"  # default of settings.RELAY_CONTROL_EXCHANGE
# Default of settings.SIMULATION_QUEUE: a quorum queue. Not "simulation", the classic
# queue of releases before quorum queues (same name, other type: a 406 on declare).
SIMULATION_QUEUE = "simulation.quorum"
# Where a message goes after x-delivery-limit deliveries (a poison message): kept for
# the operator, never looped on, never silently dropped.
DEAD_LETTER_EXCHANGE = "raceweb.dead-letter"
DEAD_LETTER_QUEUE = "raceweb.dead-letter"
RACES_GROUP = "races"  # race-list sockets: races starting, finishing, stopping, reset
SEED_GROUP = "seed.all"  # seed-compatible sockets: the raw events of every race
SEED_ALL = "all"  # `ws?race=all`


def exchange_name(slug: str) -> str:
    """The fanout exchange of a race, which is also its events' `race` field."""
    return f"{EXCHANGE_PREFIX}{slug}"


def slug_of_exchange(exchange: str) -> str:
    """The race slug of an exchange name (the seed endpoint's `?race=` value)."""
    return exchange.removeprefix(EXCHANGE_PREFIX)


def relay_queue_name(slug: str) -> str:
    """The relay's durable queue, bound to the race's exchange."""
    return f"{RELAY_QUEUE_PREFIX}{slug}"


def race_group(slug: str) -> str:
    """The channel-layer group of a race's spectators (and of the web hubs)."""
    return f"race.{slug}"


def dumps(message: Any) -> str:
    """A message as the compact JSON text that goes on the wire (UTF-8 as is, no spaces).

    orjson, not the standard library: a 1,000-athlete update encodes in 0.8 ms instead
    of 13.8, the relay's 1,000 stored athlete states of a frame in 1.1 ms instead of
    12.2, all of it on each frame's way to the spectators (one process, 2026-12-01). A
    float that is not finite becomes null (the standard library wrote NaN, which no
    browser parses)."""
    return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | bytes) -> Any:
    """A message `dumps` wrote (the hubs parse the relay's frames: 2.7 ms instead of 6.9
    for a 1,000-athlete update). Raises ValueError on anything that is not JSON."""
    return orjson.loads(text)


# ---- the position event (fanout `race-<slug>`) ------------------------------------------

EVENTS = ("start", "running", "checkpoint", "finish", "dnf")


class EventAthlete(Protocol):
    """What an event needs to know about its athlete (simulator.pacing.AthleteSpec)."""

    name: str
    gender: str
    bib: str
    athlete_id: int


def build_event(
    *,
    athlete: EventAthlete,
    race: str,
    event: str,
    seq: int,
    time: str,
    latitude: float,
    longitude: float,
    elevation: float,
    distance_m: float,
    speed_mps: float,
    checkpoint: str | None = None,
    split_s: float | None = None,
) -> dict[str, Any]:
    """One position event, ready for `json.dumps`.

    Fields as the system this project replaces sent them (athlete, gender, race,
    location, elevation, time, event), plus bib, athlete_id, seq, distance_m and
    speed_mps; checkpoint and finish events also carry `checkpoint` and `split_s`.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of {EVENTS}")
    message: dict[str, Any] = {
        "athlete": athlete.name,
        "gender": athlete.gender,
        "race": race,
        "location": {"latitude": latitude, "longitude": longitude},
        "elevation": elevation,
        "time": time,
        "event": event,
        "bib": athlete.bib,
        "athlete_id": athlete.athlete_id,
        "seq": seq,
        "distance_m": distance_m,
        "speed_mps": speed_mps,
    }
    if checkpoint is not None:
        message["checkpoint"] = checkpoint
        message["split_s"] = split_s
    return message


# ---- the athlete's public form (ATHLETE) and the leaderboard order ----------------------

# ---- positions from real trackers (issue 14) ---------------------------------------------

TRACKER_SOURCES = ("osmand", "owntracks", "traccar", "gpx", "contract")
_TRACKER_ATHLETE_BITS = 20


def tracker_seq(athlete_id: int, fix_time: datetime) -> int:
    """The seq of a tracker's fix: the fix's Unix time in ms, then the athlete.

    Trackers send no seq (and the old system's producers neither), so the relay gives one:
    the same fix sent twice (a phone re-sending its queue) gets the same seq and is stored
    once (positions are unique per race and seq), and a fix older than the athlete's newest
    has a smaller seq, which the race state stores as history without moving the athlete
    back. Fits a signed 64-bit column until the year 2109; two athletes of one race collide
    only if their ids differ by a multiple of 2**20 and their fixes fall in the same ms.
    """
    ms = round(fix_time.timestamp() * 1000)
    if ms < 0:
        raise ValueError("a fix before 1970 has no tracker seq")
    return (ms << _TRACKER_ATHLETE_BITS) | (athlete_id & ((1 << _TRACKER_ATHLETE_BITS) - 1))


def build_tracker_event(
    *,
    athlete: EventAthlete,
    slug: str,
    source: str,
    time: str,
    latitude: float,
    longitude: float,
    elevation: float | None = None,
    speed_mps: float | None = None,
    accuracy_m: float | None = None,
    battery_pct: float | None = None,
) -> dict[str, Any]:
    """One tracker fix as the ingest publishes it into `race-<slug>`: the contract event
    without `seq` and `distance_m` (the relay gives the seq, `tracker_seq`, and the distance,
    by forward-only snapping), plus `source` and, when the device said, `accuracy_m` and
    `battery_pct`. `time` is ISO 8601 UTC with `Z` (`simulator.clock.iso_z`)."""
    if source not in TRACKER_SOURCES:
        raise ValueError(f"unknown tracker source {source!r}; one of {TRACKER_SOURCES}")
    event: dict[str, Any] = {
        "athlete": athlete.name,
        "gender": athlete.gender,
        "race": exchange_name(slug),
        "location": {"latitude": latitude, "longitude": longitude},
        "elevation": elevation,
        "time": time,
        "event": "running",
        "bib": athlete.bib,
        "athlete_id": athlete.athlete_id,
        "source": source,
    }
    optional = {"speed_mps": (speed_mps, 2), "accuracy_m": (accuracy_m, 1)}
    optional["battery_pct"] = (battery_pct, 1)
    event.update({key: round(v, digits) for key, (v, digits) in optional.items() if v is not None})
    return event


NOT_STARTED = "not_started"
RUNNING = "running"
FINISHED = "finished"
DNF = "dnf"
DNS = "dns"  # did not start: an organizer's decision (race control)
STATUS_ORDER = {FINISHED: 0, RUNNING: 1, NOT_STARTED: 2, DNF: 3, DNS: 4}


def public_athlete(
    *,
    id: int,
    bib: str,
    name: str,
    gender: str,
    category: str,
    lat: float | None = None,
    lon: float | None = None,
    ele: float | None = None,
    distance_m: float = 0.0,
    speed_mps: float | None = None,
    status: str = NOT_STARTED,
    rank: int | None = None,
    rank_gender: int | None = None,
    rank_category: int | None = None,
    gap_s: float | None = None,
    pace_s_per_km: float | None = None,
    eta_s: float | None = None,
    eta_range_s: Sequence[float] | None = None,
    elapsed_s: float | None = None,
    splits: list[dict] | None = None,
    time: str | None = None,
    decision: dict | None = None,
) -> dict:
    """The ATHLETE object of the spectator protocol, with its rounding.

    `splits` is kept as given (not copied): the relay appends to one list per athlete
    and sends it only when it grew. `last_checkpoint` is its last entry. `eta_s` and
    `eta_range_s` (`[low, high]`, the 80 % band) are seconds to the finish, predicted by
    `races.relay.prediction` and rounded there to `ETA_STEP_S`.
    """
    splits = [] if splits is None else splits
    return {
        "id": id,
        "bib": bib,
        "name": name,
        "gender": gender,
        "category": category,
        "lat": _round(lat, 6),
        "lon": _round(lon, 6),
        "ele": _round(ele, 1),
        "distance_m": round(distance_m, 1),
        "speed_mps": _round(speed_mps, 2),
        "status": status,
        "rank": rank,
        "rank_gender": rank_gender,
        "rank_category": rank_category,
        "gap_s": gap_s,
        "pace_s_per_km": _round(pace_s_per_km, 1),
        "eta_s": _round(eta_s, 0),
        "eta_range_s": None if eta_range_s is None else [round(v) for v in eta_range_s],
        "elapsed_s": _round(elapsed_s, 1),
        "last_checkpoint": splits[-1] if splits else None,
        "splits": splits,
        "time": time,
        "decision": decision,
    }


def not_started_athlete(id: int, bib: str, name: str, gender: str, category: str) -> dict:
    """The public form of an athlete the relay has not heard of yet."""
    return public_athlete(id=id, bib=bib, name=name, gender=gender, category=category)


def bib_order(bib: str) -> tuple:
    """Numeric bibs by number first, then the others alphabetically."""
    return (0, int(bib), "") if bib.isdigit() else (1, 0, bib)


def leaderboard_sort_key(public: Mapping) -> tuple:
    """Leaderboard order of athletes in their public form: finished (by rank, i.e. finish
    time), running (by rank, i.e. distance), not started, DNF (furthest first); bib last."""
    return (
        STATUS_ORDER.get(public.get("status"), 4),
        public.get("rank") or 0,
        -(public.get("distance_m") or 0.0),
        bib_order(str(public.get("bib") or "")),
    )


def athlete_changes(sent: Mapping | None, public: Mapping, splits_changed: bool) -> dict:
    """What an update carries for one athlete: `id` and the fields that differ from what
    the last frame `sent`. `splits` only grows, so its flag says whether it changed
    (comparing the lists would cost a walk per athlete per frame)."""
    sent = sent or {}
    changed = {"id": public["id"]}
    for key, value in public.items():
        if key == "splits":
            if splits_changed:
                changed[key] = value
        elif key not in sent or sent[key] != value:
            changed[key] = value
    return changed


def merge_update(athletes: MutableMapping[int, dict], race: dict, update: Mapping) -> None:
    """Merge an `update` message into what a receiver holds, in place.

    `athletes`: id -> ATHLETE (from the snapshot, merged since); `race`: the snapshot's
    `race` object, whose `clock_s` the update replaces. An athlete the receiver does not
    know yet is taken as sent. The browser does the same in `static/js/state.js`.
    """
    for athlete in update["athletes"]:
        known = athletes.get(athlete["id"])
        if known is None:
            athletes[athlete["id"]] = athlete
        else:
            known.update(athlete)
    race["clock_s"] = update.get("clock_s")


# ---- the spectator protocol's messages -------------------------------------------------


class RaceRecord(Protocol):
    """What a race summary reads of a race (races.models.Race)."""

    slug: str
    name: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    clock_compression: float  # race seconds per wall second (1 for a tracked race)


def iso(moment: datetime | None) -> str | None:
    """A time as the protocol writes it (UTC with `Z`)."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def race_summary(race: RaceRecord, clock_s: float | None = None) -> dict:
    """The snapshot's `race` object (RACE of the race list)."""
    return {
        "slug": race.slug,
        "name": race.name,
        "status": race.status,
        "started_at": iso(race.started_at),
        "finished_at": iso(race.finished_at),
        "time_compression": race.clock_compression,
        "clock_s": clock_s,
    }


def snapshot_message(
    frame: int, race: Mapping, course: Mapping | None, athletes: Iterable[Mapping]
) -> dict:
    """A `snapshot`: everything at frame `frame`, athletes in leaderboard order."""
    return {
        "type": "snapshot",
        "frame": frame,
        "race": race,
        "course": course,
        "athletes": sorted(athletes, key=leaderboard_sort_key),
    }


def update_message(frame: int, clock_s: float | None, athletes: Sequence[Mapping]) -> dict:
    """An `update`: frame `frame`, the athletes that changed (see `athlete_changes`)."""
    return {"type": "update", "frame": frame, "clock_s": clock_s, "athletes": athletes}


def race_notice(race: Mapping, status: str | None = None) -> dict:
    """A `race` notice: the race summary without `clock_s`, with its new status."""
    notice = {"type": "race", **{key: value for key, value in race.items() if key != "clock_s"}}
    if status is not None:
        notice["status"] = status
    return notice


def control_notice(slug: str, status: str, generation: int) -> dict:
    """What the relays are told on the control exchange when a race changes status
    (start, finish, stop, reset); `RelayCore.on_control` reads it."""
    return {"slug": slug, "status": status, "generation": generation}


def races_message(races: Sequence[Mapping]) -> dict:
    """The race list's first message."""
    return {"type": "races", "races": races}


PONG = {"type": "pong"}


# Race control's decision messages: `races.wire_decisions` (the same contract, its own module).


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# Socket close codes of a private race's share link (docs/ARCHITECTURE.md, "Close codes");
# the race page (static/js/connection.js) treats both as final and says why.
CLOSE_LINK_EXPIRED = 4401
CLOSE_LINK_REVOKED = 4403
