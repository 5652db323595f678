"""The contract event of a tracker's fix, as the ingest publishes it into `race-<slug>`.

It belongs next to `races.wire.build_event` (THE wire contract); wire.py is at its
400-line bound, so it waits here until wire.py is split (the lead's call). Plain Python.

The event is the contract event (DESIGN.md) WITHOUT `seq` and `distance_m`: the relay
gives the seq (`races.wire.tracker_seq`, from the fix's time and the athlete) and the
distance (forward-only snapping onto the course), so a fix re-sent by a phone is stored
once and a late one never moves the athlete back. Added: `source` (one of
`races.wire.TRACKER_SOURCES`), and `accuracy_m` and `battery_pct` when the device said.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from races import wire
from simulator.clock import iso_z


def build_tracker_event(
    *,
    athlete: wire.EventAthlete,
    slug: str,
    source: str,
    time: datetime,
    latitude: float,
    longitude: float,
    elevation: float | None = None,
    speed_mps: float | None = None,
    accuracy_m: float | None = None,
    battery_pct: float | None = None,
) -> dict[str, Any]:
    """One tracker fix as a seq-less contract event, ready for `json.dumps`."""
    if source not in wire.TRACKER_SOURCES:
        raise ValueError(f"unknown tracker source {source!r}; one of {wire.TRACKER_SOURCES}")
    event: dict[str, Any] = {
        "athlete": athlete.name,
        "gender": athlete.gender,
        "race": wire.exchange_name(slug),
        "location": {"latitude": latitude, "longitude": longitude},
        "elevation": elevation,
        "time": iso_z(time),
        "event": "running",
        "bib": athlete.bib,
        "athlete_id": athlete.athlete_id,
        "source": source,
    }
    if speed_mps is not None:
        event["speed_mps"] = round(speed_mps, 2)
    if accuracy_m is not None:
        event["accuracy_m"] = round(accuracy_m, 1)
    if battery_pct is not None:
        event["battery_pct"] = round(battery_pct, 1)
    return event
