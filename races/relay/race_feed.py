"""One race inside the relay (`races.relay.core`): its inbox, its loaded state, and when
its next frame is due."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence

from races import wire
from races.relay import alert_feed, live_store
from races.relay.events import Event

Ack = Callable[[], object]

# A frame goes out once its burst is over: when no event came for QUIET_S. A simulation
# tick of 1,000 athletes reaches the relay over 60-80 ms, in AMQP hand-offs every 20 ms
# (`amqp_intake.HANDOFF_EVERY_S`); 40 ms without one means the burst is in, so the tick
# makes one frame. A steady trickle (trackers) that is never quiet waits at most one frame
# interval. Measured with `bench/run.py --scenario custom --athletes 1000 --spectators 20`
# (2026-12-01): a frame clock at a fixed phase (every 1/FRAMES_PER_SECOND s whatever
# arrived) made each position wait up to a whole interval for its frame (spectators' p50
# 366 to 723 ms by the phase); a fixed 50 ms wait after the first event split each tick
# into two frames (the second one an interval later).
QUIET_S = 0.04


class RaceFeed:
    """One race inside the relay: its inbox, its state, its frame counter."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        self.group = wire.race_group(slug)
        self.loaded: live_store.LoadedRace | None = None
        self.inbox: list[tuple[Sequence[Event], Ack | None]] = []
        self.lock = asyncio.Lock()
        self.finish_requested = False
        self.alerts: alert_feed.AlertFeed | None = None  # race control's watch
        self.alerts_checked = 0.0
        self.waiting_since = 0.0  # monotonic time the inbox last went from empty to not
        self.last_event_at = 0.0  # ... and of its newest event
        self.last_flush_at = -math.inf

    def ready_at(self, interval: float) -> float:
        """When the inbox is due as a frame: its burst is over (or it waited an interval),
        and an interval has passed since the last frame. Infinity while it is empty."""
        if not self.inbox:
            return math.inf
        burst_over = min(self.last_event_at + QUIET_S, self.waiting_since + interval)
        return max(burst_over, self.last_flush_at + interval)

    def add(self, events: Sequence[Event], ack: Ack | None, now: float) -> bool:
        """Queue events for the next frame; True if the inbox was empty."""
        first = not self.inbox
        if first:
            self.waiting_since = now
        self.last_event_at = now
        self.inbox.append((events, ack))
        return first
