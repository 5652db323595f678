"""A race's hub in one web process: its state, its ring of recent frames, its sockets.

The hub keeps the race's current state (the snapshot, merged from the frames with
`races.wire.merge_update`), a ring of recent frames for resuming clients, and the
process's sockets of that race (the fan-out machinery is `races.spectators.hub`). A frame
arrives already serialized by the relay, in both protocols: the v1 JSON text, which the hub
parses once (to keep its state) and writes to the v1 sockets, and the same frame in the
compact protocol (`races.wire_v2`), which the relay encoded once for every web process (each
web process used to parse, encode and merge it: 20-80 ms a 1,000-athlete frame in the design
load, on every frame's path) and which goes to the sockets that asked for `raceweb.v2`. A
frame without it (a relay that could not encode it) reaches v2 sockets as JSON, which the
page reads too. Snapshots are the hub's own, in either protocol.

Gaps: the relay stores a frame before sending it, so when a frame number is skipped
(channels-rabbitmq drops messages during a broker restart), the hub reloads the snapshot
from the database and sends it to all its sockets. A lost frame with no frame after it (the
last before a pause, the finish) shows no gap: a hub that has heard nothing for
QUIET_RECHECK_S asks the database for the stored frame and status, and reloads if it is
behind. Messages and reloads take turns (`_turn`), so a reload never goes back behind a
frame already sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from channels.db import database_sync_to_async

from races import wire, wire_v2
from races.operations import metrics
from races.spectators import snapshots
from races.spectators.hub import RING_FRAMES, GroupHub, Spectator, get_hub, text_message
from races.spectators.socket_writer import Outgoing

logger = logging.getLogger(__name__)

# Seconds without a message from the relay before the hub checks the database (one small
# query per quiet race and web process; a running race's frames come every second or less).
QUIET_RECHECK_S = 5.0
# ... and, when it looks behind, how long it lets a frame or notice already sent land first.
IN_FLIGHT_GRACE_S = 1.0


class RaceHub(GroupHub):
    """All spectators of one race in this process (protocol: docs/ARCHITECTURE.md)."""

    endpoint = "race"

    def __init__(self, slug: str) -> None:
        super().__init__(wire.race_group(slug))
        self.slug = slug
        self.frame = 0
        self.loaded_frame = 0  # frames up to here are inside the loaded snapshot
        self.race: dict = {}
        self.course: dict | None = None
        self.athletes: dict[int, dict] = {}
        self.ring: deque[tuple[int, Outgoing]] = deque(maxlen=RING_FRAMES)
        self._snapshot: tuple[int, Outgoing] | None = None
        self.resyncs = 0  # snapshots reloaded after a gap, a reset or a quiet-time recheck
        self.heard_at = time.monotonic()  # the last relay message or look at the database
        self._turn = asyncio.Lock()  # relay messages and quiet-time reloads, one at a time
        self._rechecker: asyncio.Task | None = None

    async def start(self) -> None:
        if not await database_sync_to_async(snapshots.race_exists)(self.slug):
            raise snapshots.UnknownRace(self.slug)
        await self.subscribe()
        try:
            await self.load()
        except BaseException:
            await self._discard()
            raise
        self.listen()
        self._rechecker = asyncio.create_task(
            self._recheck_when_quiet(), name=f"recheck {self.slug}"
        )

    async def close(self, *, force: bool = False) -> None:
        await super().close(force=force)
        if self.closed and self._rechecker is not None:
            self._rechecker.cancel()

    async def load(self) -> None:
        """(Re)load the snapshot from the database: it is never behind a received frame."""
        snapshot = await database_sync_to_async(snapshots.read_snapshot)(self.slug)
        self.frame = self.loaded_frame = snapshot["frame"]
        self.race = snapshot["race"]
        self.course = snapshot["course"]
        self.athletes = {athlete["id"]: athlete for athlete in snapshot["athletes"]}
        self.ring.clear()
        self._snapshot = None

    # ---- what spectators get ---------------------------------------------------------

    def snapshot_message(self) -> Outgoing:
        """The `snapshot` message at the current frame, serialized once per frame."""
        if self._snapshot is None or self._snapshot[0] != self.frame:
            began = time.perf_counter()
            race, course = self.race, self.course
            snapshot = wire.snapshot_message(self.frame, race, course, self.athletes.values())
            text = wire.dumps(snapshot)
            compact = Outgoing(wire_v2.encode_snapshot(snapshot))
            self._snapshot = (self.frame, Outgoing(text, compact))
            metrics.observe_snapshot(len(text.encode()), time.perf_counter() - began)
        return self._snapshot[1]

    def catch_up(self, since: int | None) -> list[Outgoing]:
        """Frames after `since` if the ring still has them all, else a snapshot."""
        if since is None or since > self.frame or since < 0:
            return [self.snapshot_message()]
        if since == self.frame:
            return []
        if self.ring and self.ring[0][0] <= since + 1:
            return [message for frame, message in self.ring if frame > since]
        return [self.snapshot_message()]

    async def join(self, spectator: Spectator, since: int | None = None) -> None:
        spectator.backlog = []
        messages = self.catch_up(since)
        self.add(spectator)
        await spectator.deliver(messages)
        metrics.frames_sent(self.endpoint, len(messages), 0)

    async def resume(self, spectator: Spectator, since: int) -> None:
        spectator.backlog = []
        messages = self.catch_up(since)
        await spectator.deliver(messages)
        metrics.frames_sent(self.endpoint, len(messages), 0)

    # ---- what the relay sends --------------------------------------------------------

    async def handle(self, message: dict) -> None:
        async with self._turn:
            self.heard_at = time.monotonic()
            await self._handle(message)

    async def _handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "race.frame":
            await self._on_frame(message)
        elif kind == "race.status":
            race = message.get("race") or {"status": message["status"]}
            self.race = {**self.race, **race}
            self._snapshot = None
            await self.broadcast(text_message(wire.dumps(wire.race_notice(race))))
        elif kind == "race.reset":
            await self.resync()

    async def _on_frame(self, message: dict) -> None:
        frame = message["frame"]
        if frame == self.frame + 1:
            await self._send_next(message)
        elif frame > self.loaded_frame:
            logger.warning("race %s: frame %s after %s; resyncing", self.slug, frame, self.frame)
            metrics.FRAME_RESYNCS.inc()
            await self.resync()
        # else: already inside the snapshot loaded after subscribing

    async def _send_next(self, message: dict) -> None:
        """Merge the next frame into the state and send it to every socket."""
        text = message["text"]
        update = wire.loads(text)
        wire.merge_update(self.athletes, self.race, update)
        self.frame = message["frame"]
        compact = message.get("compact")  # encoded by the relay; without it, v2 gets v1
        outgoing = Outgoing(text, Outgoing(compact) if compact else None)
        self.ring.append((self.frame, outgoing))
        handed = await self.broadcast(outgoing, positions=len(update["athletes"]))
        due = message.get("due")  # when this frame's positions were due (the relay's)
        if handed and due:
            metrics.observe_delivery(self.slug, due)

    async def resync(self) -> None:
        self.resyncs += 1
        await self.load()
        await self.broadcast(self.snapshot_message())

    async def _recheck_when_quiet(self) -> None:
        while not self.closed:
            await asyncio.sleep(max(0.0, self.heard_at + QUIET_RECHECK_S - time.monotonic()))
            if time.monotonic() - self.heard_at < QUIET_RECHECK_S:
                continue  # a message came meanwhile
            try:
                await self.recheck()
            except Exception as error:  # the database is away: again after the next quiet spell
                logger.warning("race %s: checking the stored frame failed: %r", self.slug, error)
            self.heard_at = time.monotonic()  # the next look, QUIET_RECHECK_S from now at most

    async def recheck(self) -> None:
        """Reload if the database holds a later frame or another status than this hub, and
        still does once what was on its way (committed, not yet received) had time to land."""
        stored = await database_sync_to_async(snapshots.stored_progress)(self.slug)
        if not self._behind(stored):
            return
        await asyncio.sleep(IN_FLIGHT_GRACE_S)
        async with self._turn:
            if not self._behind(stored):
                return
            frame, status = stored
            logger.warning(
                "race %s: nothing heard for %.0f s and frame %s (%s) stored, this hub at %s (%s); "
                "resyncing", self.slug, QUIET_RECHECK_S, frame, status, self.frame,
                self.race.get("status"),
            )  # fmt: skip
            metrics.FRAME_RESYNCS.inc()
            await self.resync()

    def _behind(self, stored: tuple[int, str] | None) -> bool:
        if stored is None:
            return False  # the race is being deleted
        frame, status = stored
        return frame > self.frame or status != self.race.get("status")


async def race_hub(slug: str) -> RaceHub:
    """This process's hub of race `slug`; raises snapshots.UnknownRace, HubUnavailable."""
    return await get_hub(f"race:{slug}", lambda: RaceHub(slug))
