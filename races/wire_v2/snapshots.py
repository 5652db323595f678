"""`raceweb.v2` snapshots: every athlete, static fields once, neighbours as deltas."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from races import wire
from races.wire_v2.codec import (
    FIELD_BIT,
    FIELDS,
    PAIR_FIELDS,
    PAIRS,
    STATIC,
    DecodeError,
    Reader,
    coded,
    flatten,
    value_of,
    varint,
    write_clock,
    zigzag,
)
from races.wire_v2.frames import SNAPSHOT, decode_update, message_kind, pack, unpack

# ---- snapshots -------------------------------------------------------------------------


class _Dictionary:
    def __init__(self) -> None:
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}

    def __call__(self, value: Any) -> int:
        key = json.dumps(value)
        if key not in self.index:
            self.index[key] = len(self.values)
            self.values.append(value)
        return self.index[key]


def _split_codes(splits: Any, checkpoints: _Dictionary) -> list[tuple[int, int]] | None:
    if not isinstance(splits, list):
        return None
    codes = []
    for split in splits:
        if not isinstance(split, dict) or set(split) != {"name", "distance_m", "split_s"}:
            return None
        time = coded("split_s", 10, split["split_s"])
        if time is None:
            return None
        codes.append((checkpoints([split["name"], split["distance_m"]]), time))
    return codes


def encode_snapshot(snapshot: Mapping, *, deflate: bool = True) -> bytes:
    """The v2 form of a v1 `snapshot` (athletes kept in its leaderboard order); deflated
    unless `deflate` is False."""
    genders, categories, statuses, checkpoints = (_Dictionary() for _ in range(4))
    header: dict[str, Any] = {"race": snapshot["race"], "course": snapshot["course"]}
    names, bibs, others = [], [], []
    body = bytearray()
    last_id, bases = 0, [0] * len(FIELDS)
    athletes = snapshot["athletes"]
    for index, whole in enumerate(athletes):
        athlete = flatten(whole)
        other: dict[str, Any] = {}
        zigzag(body, athlete["id"] - last_id)
        last_id = athlete["id"]
        names.append(athlete.get("name"))
        bibs.append(athlete.get("bib"))
        varint(body, genders(athlete.get("gender")))
        varint(body, categories(athlete.get("category")))
        varint(body, statuses(athlete.get("status")))
        mask, deltas = 0, []
        for i, (name, scale) in enumerate(FIELDS):
            value = athlete.get(name)
            number = coded(name, scale, value)
            if number is None:
                if name in PAIR_FIELDS and name not in athlete:
                    continue  # the pair is null or irregular: it goes whole in `other`
                if value is not None or name not in athlete:
                    other[name] = value
                continue
            mask |= FIELD_BIT[name]
            deltas.append(number - bases[i])
            bases[i] = number
        varint(body, mask)
        for delta in deltas:
            zigzag(body, delta)
        splits = athlete.get("splits")
        codes = _split_codes(splits, checkpoints)
        if codes is None:
            other["splits"] = splits
            codes = []
        varint(body, len(codes))
        previous = 0
        for checkpoint, time in codes:
            varint(body, checkpoint)
            zigzag(body, time - previous)
            previous = time
        implied = splits[-1] if isinstance(splits, list) and splits else None
        if athlete.get("last_checkpoint") != implied or "last_checkpoint" not in athlete:
            other["last_checkpoint"] = athlete.get("last_checkpoint")
        for key, value in athlete.items():
            if key not in FIELD_BIT and key not in STATIC and key != "id":
                other[key] = value
        if other:
            others.append([index, other])
    header |= {"names": names, "bibs": bibs, "genders": genders.values}
    header |= {"categories": categories.values, "statuses": statuses.values}
    header |= {"checkpoints": checkpoints.values, "others": others}
    out = bytearray((SNAPSHOT,))
    varint(out, snapshot["frame"])
    write_clock(out, snapshot["race"].get("clock_s"), header)
    varint(out, len(athletes))
    out += body
    text = wire.dumps(header).encode()
    varint(out, len(text))
    message = bytes(out + text)
    return pack(message) if deflate else message


def decode_snapshot(data: bytes) -> dict:
    """The v1 `snapshot` a v2 snapshot stands for."""
    reader = Reader(unpack(data))
    if reader.varint() != SNAPSHOT:
        raise DecodeError("not a snapshot")
    frame = reader.varint()
    reader.varint()  # the clock: the race object in the header carries it
    rows = []
    last_id, bases = 0, [0] * len(FIELDS)
    for _ in range(reader.varint()):
        last_id += reader.zigzag()
        row = [last_id, reader.varint(), reader.varint(), reader.varint()]
        mask, values = reader.varint(), {}
        for i, (name, scale) in enumerate(FIELDS):
            if mask & FIELD_BIT[name]:
                bases[i] += reader.zigzag()
                values[name] = value_of(name, scale, bases[i])
        splits, time = [], 0
        for _ in range(reader.varint()):
            checkpoint = reader.varint()
            time += reader.zigzag()
            splits.append((checkpoint, time))
        rows.append((row, values, splits))
    length = reader.varint()
    header = json.loads(reader.rest()[:length])
    others = dict((index, other) for index, other in header["others"])
    athletes = []
    for index, ((athlete_id, gender, category, status), values, codes) in enumerate(rows):
        splits = [
            {
                "name": header["checkpoints"][c][0],
                "distance_m": header["checkpoints"][c][1],
                "split_s": time / 10,
            }
            for c, time in codes
        ]
        athlete = wire.public_athlete(
            id=athlete_id,
            bib=header["bibs"][index],
            name=header["names"][index],
            gender=header["genders"][gender],
            category=header["categories"][category],
            status=header["statuses"][status],
            splits=splits,
        )
        for name, _ in FIELDS:
            if name not in PAIR_FIELDS:
                athlete[name] = values.get(name)
        for key, (low, high) in PAIRS.items():
            if low in values and high in values:
                athlete[key] = [values[low], values[high]]
        athlete.update(others.get(index, {}))
        athletes.append(athlete)
    return {
        "type": "snapshot",
        "frame": frame,
        "race": header["race"],
        "course": header["course"],
        "athletes": athletes,
    }


def decode(data: bytes, athletes: MutableMapping[int, Mapping]) -> dict:
    """Either message as its v1 form (updates against `athletes`)."""
    kind, _ = message_kind(data)
    return decode_snapshot(data) if kind == SNAPSHOT else decode_update(data, athletes)


def snapshot_of(frame: int, race: Mapping, course: Any, athletes: Iterable[Mapping]) -> bytes:
    """`encode_snapshot` of `races.wire.snapshot_message(...)`."""
    return encode_snapshot(wire.snapshot_message(frame, race, course, athletes))
