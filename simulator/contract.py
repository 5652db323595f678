"""The event contract on the fanout ``race-<slug>``, built in this one place.

Fields (DESIGN.md, kept field for field from the system this project replaces, plus the
useful ones): athlete, gender, race, location{latitude, longitude}, elevation, time,
event, bib, athlete_id, seq, distance_m, speed_mps. Checkpoint and finish events also
carry ``checkpoint`` (its name) and ``split_s`` (race seconds from the start).
"""

from __future__ import annotations

from typing import Any

from simulator.pacing import AthleteSpec

EVENTS = ("start", "running", "checkpoint", "finish", "dnf")


def exchange_name(slug: str) -> str:
    """The fanout exchange of a race, which is also the event's ``race`` field."""
    return f"race-{slug}"


def build_event(
    *,
    athlete: AthleteSpec,
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
    """One position event, ready for ``json.dumps``."""
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
