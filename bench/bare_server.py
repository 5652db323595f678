"""The raw baseline: a minimal ``websockets`` broadcast server fed the same frames.

``--upstream ws://...`` follows one real spectator socket of RaceWeb and re-broadcasts
every frame it receives, byte for byte, to its own clients (who first get the upstream's
snapshot with the current frame number). ``--upstream synthetic`` makes update frames
itself at ``--fps`` with ``--athletes`` athletes stamped with the current time, to measure
the ceiling with no RaceWeb process at all. The harness reads one JSON line
``{"listening": port}`` once the server has its first frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from bench.frames import frame_number, frame_type


class Relay:
    def __init__(self) -> None:
        self.subscribers: set[ServerConnection] = set()
        self.snapshot: dict = {"type": "snapshot", "athletes": []}
        self.frame = 0
        self.first_frame = asyncio.Event()

    def publish(self, data: bytes) -> None:
        number = frame_number(data)
        if number is not None:
            self.frame = number
        broadcast(self.subscribers, data, text=True)

    async def handler(self, ws: ServerConnection) -> None:
        # Synchronous send then subscribe: no frame can slip between the two.
        broadcast([ws], json.dumps({**self.snapshot, "frame": self.frame}))
        self.subscribers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.subscribers.discard(ws)


async def follow_upstream(relay: Relay, url: str, origin: str | None) -> None:
    """Follow the upstream socket; if it closes, say why on stderr and follow it again."""
    while True:
        try:
            async with connect(url, origin=origin, compression=None, max_size=None) as ws:
                while True:
                    data = await ws.recv(decode=False)
                    if frame_type(data) == b"snapshot":
                        relay.snapshot = json.loads(data)
                        relay.frame = relay.snapshot.get("frame", 0)
                    else:
                        relay.publish(data)
                    relay.first_frame.set()
        except (OSError, ConnectionClosed) as error:
            print(f"upstream {url} lost: {error!r}; reconnecting", file=sys.stderr, flush=True)
            await asyncio.sleep(0.5)


def synthetic_frame(number: int, athletes: int) -> bytes:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return json.dumps(
        {
            "type": "update",
            "frame": number,
            "clock_s": round(time.time(), 3),
            "athletes": [
                {
                    "id": i,
                    "bib": str(i),
                    "name": f"Athlete {i}",
                    "gender": "female",
                    "category": "W40",
                    "lat": 48.2,
                    "lon": 16.3,
                    "ele": 412.0,
                    "distance_m": 5230.5,
                    "speed_mps": 3.1,
                    "status": "running",
                    "rank": i,
                    "time": stamp,
                }
                for i in range(athletes)
            ],
        }
    ).encode()


async def synthesize(relay: Relay, fps: float, athletes: int) -> None:
    number = 0
    period = 1.0 / fps
    next_at = time.monotonic()
    while True:
        number += 1
        relay.publish(synthetic_frame(number, athletes))
        relay.first_frame.set()
        next_at += period
        await asyncio.sleep(max(next_at - time.monotonic(), 0))


async def main(args: argparse.Namespace) -> None:
    relay = Relay()
    async with serve(
        relay.handler, "127.0.0.1", args.port, compression=None, max_size=2**16, backlog=4096
    ):
        if args.upstream == "synthetic":
            source = synthesize(relay, args.fps, args.athletes)
        else:
            source = follow_upstream(relay, args.upstream, args.origin)
        task = asyncio.create_task(source)
        await asyncio.wait_for(relay.first_frame.wait(), timeout=60)
        print(json.dumps({"listening": args.port}), flush=True)
        await asyncio.wait([task], timeout=args.max_seconds)
        task.cancel()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="ws://... or 'synthetic'")
    parser.add_argument("--origin", default=None)
    parser.add_argument("--fps", type=float, default=50.0, help="synthetic frames/s")
    parser.add_argument("--athletes", type=int, default=2, help="synthetic athletes/frame")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="hard stop")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
