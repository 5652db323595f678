"""The relay's own counters, for tests and debugging (Prometheus counts the same events in
`races.operations.metrics`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RelayStats:
    """What one relay core has done since it started: read them, never reset them."""

    events_in: int = 0
    positions_stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    frames_sent: int = 0
    send_timeouts: int = 0
    sends_dropped: int = 0
    store_failures: int = 0
    per_race_frame: dict[str, int] = field(default_factory=dict)
