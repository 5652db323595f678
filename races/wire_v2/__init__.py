"""The compact spectator protocol `raceweb.v2`: binary snapshots and update frames.

A page asks for it with the WebSocket subprotocol `raceweb.v2` on `ws/races/<slug>/`;
without it the socket speaks the JSON protocol of `races.wire` (v1) unchanged. v2 says
exactly what v1 says — decoding a v2 frame and merging it gives the same ATHLETE objects
as merging the v1 frame (`tests/test_wire_v2.py` checks it frame by frame on the recorded
races) — in fewer bytes:

- numbers as integers at the precision v1 already rounds them to (lat/lon 1e-6°, distance,
  elevation, elapsed, pace and gap 0.1, speed 0.01, ETA 1 s, time in ms), varint coded;
- in an update, each number as the difference to the athlete's value in the PREVIOUS FRAME
  (what every receiver holds: frames are applied in order, a gap means resume or a new
  snapshot), so one encoding per frame (the relay's) serves every socket;
- athletes by id gaps (ids sorted), the fields present as one bitmask, no key names;
- name, bib, gender and category only in snapshots (dictionaries for the repeated ones);
- whatever is rare or irregular (a status change, splits, a null, a value not exact at
  its precision, an athlete the previous frame did not hold) as v1 JSON in a trailing
  `extras` object, merged the v1 way.

Layout (the kind is one byte; other integers unsigned LEB128 varints; `z` = zigzag):

    update:   0x81 frame deflate(clock n (id_gap mask z(delta)*)*n [extras JSON])
    snapshot: 0x82 frame deflate(clock n (z(id_delta) gender category status mask
              z(delta)* k (checkpoint z(split_delta))*k)*n  header_length header_JSON)

The kind's top bit says the rest after the frame number is raw deflate (0x01 / 0x02: not
deflated; decoders take both), one shot per message: no context carried between frames,
so a frame is compressed once for all sockets, and the frame number is readable
without inflating.

`clock`: 0 = null, 1 = in the extras/header JSON, c >= 2: z(c - 2) milliseconds. In a
snapshot a number is the difference to the same field of the previous athlete in the
snapshot (leaderboard order keeps neighbours close). The browser's decoder is
`static/js/wire-v2.js`; `decode_update` / `decode_snapshot` here mirror it.

Measured (bench/wire_bytes.py, 1,000 athletes at 1 Hz, 15 minutes into the race):
integer deltas are 8.9 bytes per athlete update against 99 for v1 JSON; deflating the
encoded frame once more takes it to 3.7 (snapshot 61 KB -> 19 KB) for ~2 % more encoding
CPU per frame (once per frame, not per socket), so frames are deflated. The page
inflates with the browser's DecompressionStream (asynchronous: `FrameSocket` applies
messages in arrival order).
"""

from __future__ import annotations

from races.wire_v2.codec import DecodeError
from races.wire_v2.frames import (
    DEFLATED,
    SNAPSHOT,
    UPDATE,
    decode_update,
    encode_update,
    message_kind,
    pack,
    unpack,
    update_times,
)
from races.wire_v2.snapshots import decode, decode_snapshot, encode_snapshot, snapshot_of

SUBPROTOCOL = "raceweb.v2"

__all__ = [
    "DEFLATED",
    "SNAPSHOT",
    "SUBPROTOCOL",
    "UPDATE",
    "DecodeError",
    "decode",
    "decode_snapshot",
    "decode_update",
    "encode_snapshot",
    "encode_update",
    "message_kind",
    "pack",
    "snapshot_of",
    "unpack",
    "update_times",
]
