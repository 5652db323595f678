"""Reading spectator frames cheaply: the client cost must stay far below the server's.

A frame is scanned with regular expressions instead of ``json.loads``: its type and
number from its head, and the ``time`` of every athlete it carries. Every spectator of a
race receives the same frame N, so a client process scans N's athletes once
(``FrameCache``) and each connection only adds its own receipt time. Athletes of one
tick share one timestamp, so each distinct timestamp is parsed once too.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from datetime import datetime

TYPE = re.compile(rb'"type":\s*"(\w+)"')
FRAME = re.compile(rb'"frame":\s*(\d+)')
TIME = re.compile(rb'"time":\s*"([^"]+)"')

_epochs: dict[bytes, float] = {}


def frame_type(data: bytes) -> bytes | None:
    match = TYPE.search(data, 0, 200)
    return match.group(1) if match else None


def frame_number(data: bytes) -> int | None:
    match = FRAME.search(data, 0, 200)
    return int(match.group(1)) if match else None


def event_times(data: bytes) -> Counter[bytes]:
    """How many athletes of the frame carry each timestamp."""
    return Counter(TIME.findall(data))


def epoch_of(timestamp: bytes) -> float:
    """Seconds since the epoch of an ISO 8601 timestamp such as 2026-05-01T09:00:05.250Z."""
    epoch = _epochs.get(timestamp)
    if epoch is None:
        if len(_epochs) > 100_000:
            _epochs.clear()
        epoch = datetime.fromisoformat(timestamp.decode()).timestamp()
        _epochs[timestamp] = epoch
    return epoch


class FrameCache:
    """The event times of the last frames seen by this process, by frame number."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._frames: OrderedDict[tuple[int, int], list[tuple[float, int]]] = OrderedDict()
        self.scans = 0

    def times(self, number: int, data: bytes) -> list[tuple[float, int]]:
        """(event epoch, athletes) pairs of frame ``number``; the length guards the key."""
        key = (number, len(data))
        found = self._frames.get(key)
        if found is None:
            self.scans += 1
            found = [(epoch_of(stamp), count) for stamp, count in event_times(data).items()]
            self._frames[key] = found
            if len(self._frames) > self.size:
                self._frames.popitem(last=False)
        return found
