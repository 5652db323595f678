"""The relay's channel-layer sends: shielded from cancellation, bounded in time and number.

A cancelled channels-rabbitmq call can break the layer for good in that process
(DESIGN.md), so a send is never cancelled: it is shielded, and the relay waits for it at
most SEND_TIMEOUT_S. A frame that cannot be sent is lost for spectators, who see the gap
in frame numbers and get a fresh snapshot. While MAX_PENDING_SENDS are still in flight
(the layer is stuck), further sends are dropped rather than piled up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from races.operations import metrics

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
MAX_PENDING_SENDS = 64


class SendCounters(Protocol):
    """Where the sender counts what went wrong (the relay's RelayStats)."""

    send_timeouts: int
    sends_dropped: int


class GroupSender:
    """`group_send` for the relay: one per RelayCore."""

    def __init__(self, layer: Any, counters: SendCounters) -> None:
        self.layer = layer
        self.counters = counters
        self.pending: set[asyncio.Future] = set()

    async def send(self, group: str, message: dict) -> None:
        """group_send, shielded from cancellation and bounded in time."""
        if len(self.pending) >= MAX_PENDING_SENDS:
            self.counters.sends_dropped += 1
            metrics.RELAY_GROUP_SENDS_DROPPED.inc()
            logger.warning("channel layer stuck: dropped a %s to %s", message["type"], group)
            return
        send = asyncio.ensure_future(self.layer.group_send(group, message))
        self.pending.add(send)
        send.add_done_callback(self.pending.discard)
        try:
            with metrics.RELAY_GROUP_SEND_SECONDS.time():
                await asyncio.wait_for(asyncio.shield(send), SEND_TIMEOUT_S)
        except TimeoutError:
            self.counters.send_timeouts += 1
            metrics.RELAY_GROUP_SEND_TIMEOUTS.inc()
            logger.warning("group_send to %s still pending after %ss", group, SEND_TIMEOUT_S)

    async def drain(self) -> None:
        """Wait (bounded) for the sends still in flight."""
        if self.pending:
            await asyncio.wait(self.pending, timeout=SEND_TIMEOUT_S)
