"""One race inside the relay (`races.relay.core`): its inbox, its loaded state, and when
its next frame is due.

Events are decoded as they arrive (`races.relay.events.receive`), while the relay waits for
the rest of their burst anyway, so that a frame's work starts from dicts."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence

from races import wire
from races.relay import alert_feed, live_store
from races.relay.events import Event, Received, athlete_reference, receive
from races.relay.frame_events import AppliedEvents, applied_to
from races.relay.relay_stats import RelayStats

Ack = Callable[[], object]
Batch = tuple[list[Received], Ack | None]

# A frame goes out once its burst is over: when no event came for QUIET_S. A simulation
# tick of 1,000 athletes reaches the relay over 60-80 ms, in AMQP hand-offs (at most 20 ms
# apart, `amqp_intake.HANDOFF_EVERY_S`); 40 ms without one means the burst is in, so the
# tick makes one frame. A steady trickle (trackers) that is never quiet waits at most one frame
# interval. Measured with `bench/run.py --scenario custom --athletes 1000 --spectators 20`
# (2026-12-01): a frame clock at a fixed phase (every 1/FRAMES_PER_SECOND s whatever
# arrived) made each position wait up to a whole interval for its frame (spectators' p50
# 366 to 723 ms by the phase); a fixed 50 ms wait after the first event split each tick
# into two frames (the second one an interval later).
#
# A simulation need not wait for the quiet: its tick has an event from every athlete out on
# the course (`RaceState.out_on_course`, kept in `expected` after each frame), so once each
# of them has one in the inbox the tick is in and its frame is due at once. Trackers, whose
# fixes come at any phase, rarely all report within one frame: for them the quiet rule
# stands. (An athlete named two ways, or events of a finished athlete's tracker, can make
# the count early: the rest of the tick then follows in the next frame, nothing is lost.)
QUIET_S = 0.04


class RaceFeed:
    """One race inside the relay: its inbox, its state, its frame counter."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        self.group = wire.race_group(slug)
        self.loaded: live_store.LoadedRace | None = None
        self.inbox: list[Batch] = []  # events decoded on arrival, each batch with its ack
        self.lock = asyncio.Lock()
        self.finish_requested = False
        self.alerts: alert_feed.AlertFeed | None = None  # race control's watch
        self.alerts_checked = 0.0
        self.waiting_since = 0.0  # monotonic time the inbox last went from empty to not
        self.last_event_at = 0.0  # ... and of its newest event
        self.last_flush_at = -math.inf
        self.expected = 0  # athletes out on the course after the last frame (0: unknown)
        self._reported: set = set()  # athletes with an event in the inbox
        self.applied = AppliedEvents()  # the inbox's batches applied on arrival

    def ready_at(self, interval: float) -> float:
        """When the inbox is due as a frame: its burst is over (or it waited an interval),
        and an interval has passed since the last frame. Infinity while it is empty."""
        if not self.inbox:
            return math.inf
        if self.everyone_reported:
            burst_over = self.last_event_at
        else:
            burst_over = min(self.last_event_at + QUIET_S, self.waiting_since + interval)
        return max(burst_over, self.last_flush_at + interval)

    @property
    def everyone_reported(self) -> bool:
        """Every athlete out on the course has an event in the inbox."""
        return 0 < self.expected <= len(self._reported)

    def add(self, events: Sequence[Event], ack: Ack | None, now: float) -> bool:
        """Decode and queue events for the next frame; True if the frame loop should look
        again: the inbox was empty, or now everyone out on the course has reported."""
        first = not self.inbox
        if first:
            self.waiting_since = now
        self.last_event_at = now
        received = [receive(event) for event in events]
        complete = self.everyone_reported
        for item in received:
            reference = None if item.data is None else athlete_reference(item.data)
            if reference is not None and isinstance(reference[1], int | str):
                self._reported.add(reference)  # (a bad id is refused when applied)
        self.inbox.append((received, ack))
        return first or (self.everyone_reported and not complete)

    def apply_arrived(self, stats: RelayStats) -> None:
        """Apply the batches not applied yet to the loaded state (call outside a frame)."""
        if self.loaded is None or self.lock.locked():
            return  # no state yet, or a frame is being stored: the frame applies them
        loaded = self.loaded
        self.applied = applied_to(
            self.applied, loaded.state, self.slug, loaded.tracker, self.inbox, stats
        )

    def take_inbox(self) -> tuple[list[Batch], AppliedEvents]:
        """Everything queued, for one frame, with what of it was applied on arrival; the
        inbox starts again empty."""
        batch, self.inbox = self.inbox, []
        applied, self.applied = self.applied, AppliedEvents()
        self._reported.clear()
        return batch, applied

    def put_back(self, batch: list[Batch]) -> None:
        """A frame that could not be stored: its events go first in the next one, to be
        applied again to the state reloaded from the database."""
        self.inbox[:0] = batch
        self.applied = AppliedEvents()
