"""Contract events as the relay reads them: decoded, checked field by field.

An event that cannot be used raises `InvalidEvent` with the reason; the relay logs it,
counts it and carries on with the rest of the batch (producers are not all ours: real
trackers, the seed system's tools).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from races.wire import EVENTS

EVENT_KINDS = frozenset(EVENTS)
# Positions store seq in a 64-bit column: a larger one would fail the whole batch's insert.
MAX_SEQ = 2**63 - 1

Event = dict[str, Any] | bytes | str


class InvalidEvent(ValueError):
    """An event the relay cannot use; the message says why."""


def decode(event: Event) -> tuple[dict, str | None]:
    """The event as a dict, and its JSON text when it came as text (kept for the seed
    sockets, which get the bytes that came through the fanout)."""
    if isinstance(event, dict):
        return event, None
    try:
        text = event.decode() if isinstance(event, bytes) else event
        data = json.loads(text)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise InvalidEvent(f"not JSON: {str(error)[:200]}") from error
    if not isinstance(data, dict):
        raise InvalidEvent("an event must be a JSON object")
    return data, text


class Received(NamedTuple):
    """An event as it came in, decoded once on arrival: `data`, its JSON `text` (None for a
    dict), or the `error` that makes it unusable (reported when its frame is applied)."""

    data: dict | None
    text: str | None
    error: InvalidEvent | None = None


def receive(event: Event) -> Received:
    """`decode` that keeps the error for later instead of raising it."""
    try:
        return Received(*decode(event))
    except InvalidEvent as error:
        return Received(None, None, error)


def athlete_reference(event: Mapping) -> tuple[str, Any] | None:
    """Which athlete an event is about, as it names them: ("id", athlete_id), ("bib",
    bib) or ("name", athlete), in that order of precedence; None if it names nobody."""
    if event.get("athlete_id") is not None:
        return ("id", event["athlete_id"])
    if event.get("bib") is not None:
        return ("bib", str(event["bib"]))
    if isinstance(event.get("athlete"), str):
        return ("name", event["athlete"])
    return None


def parse_time(value: object) -> datetime:
    """An ISO 8601 time with a timezone (the contract's `time`)."""
    if not isinstance(value, str):
        raise InvalidEvent("time must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidEvent(f"time {value!r} is not ISO 8601") from error
    if parsed.tzinfo is None:
        raise InvalidEvent(f"time {value!r} has no timezone")
    return parsed


def location(event: Mapping) -> tuple[float, float]:
    """(latitude, longitude) of the event's `location` object, in range."""
    place = event.get("location")
    if not isinstance(place, Mapping):
        raise InvalidEvent("location must be an object with latitude and longitude")
    latitude = optional_float(place, "latitude")
    longitude = optional_float(place, "longitude")
    if latitude is None or longitude is None:
        raise InvalidEvent("location needs latitude and longitude")
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise InvalidEvent(f"location {latitude}, {longitude} is out of range")
    return latitude, longitude


def optional_float(data: Mapping, key: str) -> float | None:
    """A finite number, or None when absent (JSON has no NaN, but Python's parser does)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{key} must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidEvent(f"{key} must be finite")
    return value


def required_int(data: Mapping, key: str) -> int:
    """A non-negative integer that fits the database's 64-bit column."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"{key} must be an integer")
    if not 0 <= value <= MAX_SEQ:
        raise InvalidEvent(f"{key} {value:.3g} is outside 0 to 2**63 - 1")
    return value


def kind(event: Mapping) -> str:
    """The event's `event` field, one of the contract's kinds."""
    value = event.get("event")
    if not isinstance(value, str) or value not in EVENT_KINDS:
        raise InvalidEvent(f"unknown event kind {value!r}")
    return value
