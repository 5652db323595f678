"""A frame's events applied to the race state: the positions to store, the raw events for
the seed sockets, and what was dropped.

The relay applies a race's events as they arrive (`RelayCore.ingest`), while the rest of
their burst is still on its way, rather than all at once when the frame is due: in the
design load (1,000 athletes at 1 Hz) applying a tick took ~11 ms (one process, quiet
machine) on the path of every frame after its last event. What was applied is only good for
the state it was applied to: after a reload (a failed store, a standby taking over) the
frame applies its events again from the start (`AppliedEvents.state`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from races import wire, wire_decisions
from races.operations import metrics
from races.relay import tracker_fixes
from races.relay.events import InvalidEvent, Received
from races.relay.race_state import Fix, RaceState
from races.relay.relay_stats import RelayStats
from races.relay.tracker_fixes import TrackerIntake

logger = logging.getLogger(__name__)


@dataclass
class AppliedEvents:
    """What the first `batches` batches of an inbox did to `state`."""

    state: RaceState | None = None
    batches: int = 0
    fixes: list[Fix] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # new positions as they came in
    duplicates: int = 0

    def apply(
        self,
        slug: str,
        tracker: TrackerIntake | None,
        received: Iterable[Received],
        stats: RelayStats,
    ) -> None:
        """Apply one batch's events to `state`, in order; a bad event is counted, logged
        and skipped, never the batch."""
        state = self.state
        assert state is not None
        for data, text, error in received:
            try:
                if error is not None:
                    raise error
                if wire_decisions.is_decision(data):
                    state.apply_decision(data)
                    logger.info("race %s: decision %s", slug, data)
                    continue
                fix = tracker_fixes.apply(state, tracker, data)
            except InvalidEvent as refused:
                stats.invalid += 1
                metrics.RELAY_EVENTS_INVALID.inc()
                logger.warning("race %s: event refused: %s", slug, refused)
                continue
            if fix is None:
                stats.duplicates += 1
                self.duplicates += 1
                continue
            self.fixes.append(fix)
            if not fix.history:  # the seed sockets' raw feed: new positions only
                self.raw.append(text if text is not None else wire.dumps(data))
        self.batches += 1


def applied_to(
    record: AppliedEvents,
    state: RaceState,
    slug: str,
    tracker: TrackerIntake | None,
    batches: list,
    stats: RelayStats,
) -> AppliedEvents:
    """`record` brought up to date with `batches` (an inbox, in order) on `state`: the
    batches it has not applied yet, or all of them on a fresh record when it was made for
    another state (reloaded since)."""
    if record.state is not state:
        record = AppliedEvents(state)
    for received, _ in batches[record.batches :]:
        record.apply(slug, tracker, received, stats)
    return record
