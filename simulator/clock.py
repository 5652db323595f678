"""The race clock: race seconds run ``time_compression`` times faster than the wall clock.

A race started at wall time ``started_at`` with compression 20 is 20 race-minutes in
after one wall minute. Event timestamps are race time (``started_at`` plus race
seconds), so a six-hour race replayed in 18 minutes still shows a six-hour finish.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta


def race_seconds(started_at: datetime, now: datetime, time_compression: float) -> float:
    """Race-clock seconds elapsed at wall time ``now`` (0 before the start)."""
    return max((now - started_at).total_seconds(), 0.0) * time_compression


def wall_time_of(started_at: datetime, race_s: float, time_compression: float) -> datetime:
    """The wall time at which the race clock reads ``race_s``."""
    return started_at + timedelta(seconds=race_s / time_compression)


def tick_at(race_s: float, tick_seconds: float) -> int:
    """The last tick whose race time has been reached (tick k is at k * tick_seconds)."""
    # The epsilon keeps 0.3 / 0.1 from landing on tick 2 through floating-point error.
    return math.floor(race_s / tick_seconds + 1e-9)


def event_time(started_at: datetime, race_s: float) -> datetime:
    """The timestamp an event at race second ``race_s`` carries."""
    return started_at + timedelta(seconds=race_s)


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: whole seconds, or milliseconds when there are any."""
    utc = moment.astimezone(UTC)
    if utc.microsecond == 0:
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
