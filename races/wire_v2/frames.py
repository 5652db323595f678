"""`raceweb.v2` update frames: encoded once per frame (by the relay), decoded like the page."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Mapping, MutableMapping
from typing import Any

from races import wire
from races.wire_v2.codec import (
    FIELD_BIT,
    FIELD_OF,
    FIELDS,
    DecodeError,
    Reader,
    coded,
    flat_value,
    flatten,
    read_clock,
    time_ms,
    unflatten,
    value_of,
    varint,
    write_clock,
    zigzag,
)

UPDATE, SNAPSHOT = 1, 2
DEFLATED = 0x80  # flag on the kind: everything after the frame number is raw deflate


# ---- update frames ---------------------------------------------------------------------


def encode_update(
    previous: Mapping[int, Mapping],
    update: Mapping,
    *,
    deflate: bool = True,
    repeats: bool = True,
) -> bytes:
    """The v2 form of a v1 `update`, against `previous` (id -> ATHLETE at the frame before);
    deflated unless `deflate` is False.

    `repeats`: the update may repeat fields that did not change (a receiver's view: v1
    repeats an athlete whole when the relay first publishes it), so equal fields are left
    out. The relay, whose update holds only what changed, passes False: its `previous`
    forms share their split lists with the new ones (appended in place), so comparing
    them would hide a new split."""
    records: list[tuple[int, int, list[int]]] = []
    extra_athletes: list[dict] = []
    for athlete in update["athletes"]:
        known = previous.get(athlete["id"])
        if known is None:
            extra_athletes.append(dict(athlete))
            continue
        athlete = flatten(athlete)
        if repeats:
            known = flatten(known)
        mask, deltas, extra = 0, {}, {}
        for key, value in athlete.items():
            if key == "id" or (repeats and key in known and known[key] == value):
                continue  # unchanged (v1 repeats an athlete whole when it starts)
            field = FIELD_OF.get(key)
            if field is None:
                extra[key] = value
                continue
            bit, scale = field
            before = known.get(key) if repeats else flat_value(known, key)
            new, old = coded(key, scale, value), coded(key, scale, before)
            if new is None or old is None:
                extra[key] = value
            else:
                mask |= 1 << bit
                deltas[bit] = new - old
        deltas = [deltas[bit] for bit in sorted(deltas)]
        if mask:
            records.append((athlete["id"], mask, deltas))
        if extra:
            extra_athletes.append({"id": athlete["id"], **extra})
    records.sort(key=lambda record: record[0])
    extras: dict[str, Any] = {}
    out = bytearray((UPDATE,))
    varint(out, update["frame"])
    write_clock(out, update.get("clock_s"), extras)
    varint(out, len(records))
    last_id = 0
    for athlete_id, mask, deltas in records:
        if athlete_id < last_id or athlete_id < 0:
            raise ValueError(f"athlete id {athlete_id} cannot be gap coded")
        varint(out, athlete_id - last_id)
        last_id = athlete_id
        varint(out, mask)
        for delta in deltas:
            zigzag(out, delta)
    if extra_athletes:
        extras["athletes"] = extra_athletes
    if extras:
        out += wire.dumps(extras).encode()
    return pack(bytes(out)) if deflate else bytes(out)


def pack(message: bytes) -> bytes:
    """`message` with everything after its frame number deflated (raw, one shot: no
    context between frames, so one compression per frame serves every socket)."""
    reader = Reader(message)
    reader.at = 1  # the kind is one byte (its top bit the flag)
    reader.varint()
    body = zlib.compress(message[reader.at :], 6, -15)
    return bytes((message[0] | DEFLATED,)) + message[1 : reader.at] + body


def unpack(data: bytes) -> bytes:
    """A message as `pack` got it."""
    if not data or not data[0] & DEFLATED:
        return data
    reader = Reader(data)
    reader.at = 1
    reader.varint()
    try:
        body = zlib.decompress(data[reader.at :], -15)
    except zlib.error as error:
        raise DecodeError(f"broken deflate: {error}") from error
    return bytes((data[0] & ~DEFLATED,)) + data[1 : reader.at] + body


def message_kind(data: bytes) -> tuple[int, int]:
    """(kind, frame) of a v2 message, read from its head only."""
    if not data:
        raise DecodeError("empty message")
    reader = Reader(data)
    reader.at = 1
    return data[0] & ~DEFLATED, reader.varint()


def decode_update(data: bytes, athletes: Mapping[int, Mapping]) -> dict:
    """The v1 `update` a v2 update stands for, given what the receiver holds (`athletes`,
    the state at the frame before). Merge it with `races.wire.merge_update`."""
    reader = Reader(unpack(data))
    if reader.varint() != UPDATE:
        raise DecodeError("not an update")
    frame = reader.varint()
    clock_at = reader.at
    reader.varint()  # the clock, read again once the extras are known
    count = reader.varint()
    partials: dict[int, dict] = {}
    athlete_id = 0
    for _ in range(count):
        athlete_id += reader.varint()
        mask = reader.varint()
        known = athletes.get(athlete_id)
        if known is None:
            raise DecodeError(f"athlete {athlete_id} is not in the previous frame")
        known = flatten(known)
        partial = {"id": athlete_id}
        for name, scale in FIELDS:
            if mask & FIELD_BIT[name]:
                base = coded(name, scale, known.get(name))
                if base is None:
                    raise DecodeError(f"athlete {athlete_id}: no {name} to add to")
                partial[name] = value_of(name, scale, base + reader.zigzag())
        partials[athlete_id] = partial
    rest = reader.rest()
    extras = json.loads(rest) if rest else {}
    for extra in extras.get("athletes", ()):
        partials.setdefault(extra["id"], {}).update(extra)
    for athlete_id, partial in partials.items():
        unflatten(partial, athletes.get(athlete_id))
    reader.at = clock_at
    clock_s = read_clock(reader, extras)
    return wire.update_message(frame, clock_s, list(partials.values()))


_TIME_BIT = FIELD_OF["time"][0]


def update_times(data: bytes, held: MutableMapping[int, int | None]) -> Counter[int]:
    """How many athletes of update `data` carry each event time (ms): the positions a
    receiver that follows only the times gets from it, without the full decode.

    `held` maps athlete id to event time (ms, or None) at the frame before; it is advanced
    in place. For the benchmark's spectators: a client process of 250 sockets decoded each
    1,000-athlete frame in full (10 ms) just for its times, eight processes on the cores
    the server was measured on. Raises DecodeError like `decode_update`.
    """
    reader = Reader(unpack(data))
    if reader.varint() != UPDATE:
        raise DecodeError("not an update")
    reader.varint()  # frame
    reader.varint()  # clock
    moved: dict[int, int | None] = {}
    athlete_id = 0
    for _ in range(reader.varint()):
        athlete_id += reader.varint()
        mask = reader.varint()
        if athlete_id not in held:
            raise DecodeError(f"athlete {athlete_id} is not in the previous frame")
        bit = 0
        while mask:
            if mask & 1:
                delta = reader.zigzag()
                if bit == _TIME_BIT:
                    base = held[athlete_id]
                    if base is None:
                        raise DecodeError(f"athlete {athlete_id}: no time to add to")
                    moved[athlete_id] = base + delta
            mask >>= 1
            bit += 1
    rest = reader.rest()
    for extra in (json.loads(rest) if rest else {}).get("athletes", ()):
        if "time" in extra:
            moved[extra["id"]] = time_ms(extra["time"])
        elif extra["id"] not in held:
            held[extra["id"]] = None
    held.update(moved)
    return Counter(ms for ms in moved.values() if ms is not None)
