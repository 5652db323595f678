"""`raceweb.v2`'s numbers: the field table, varints, and each value at its precision.

See the package's docstring (`races/wire_v2/__init__.py`) for the layout.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

# (field, scale): the value on the wire is round(value * scale); `time` is ISO text in ms.
FIELDS: tuple[tuple[str, int], ...] = (
    ("lat", 10**6),
    ("lon", 10**6),
    ("ele", 10),
    ("distance_m", 10),
    ("speed_mps", 100),
    ("elapsed_s", 10),
    ("pace_s_per_km", 10),
    ("eta_s", 1),
    ("gap_s", 10),
    ("time", 0),
    ("rank", 1),
    ("rank_gender", 1),
    ("rank_category", 1),
    ("eta_low_s", 1),
    ("eta_high_s", 1),
)
# A v1 field that is a pair of numbers travels as two fields of the table (`flatten`,
# `unflatten`): the prediction band `eta_range_s: [low, high]`.
PAIRS = {"eta_range_s": ("eta_low_s", "eta_high_s")}
PAIR_FIELDS = frozenset(name for pair in PAIRS.values() for name in pair)
INTEGER_FIELDS = frozenset({"rank", "rank_gender", "rank_category"})
FIELD_BIT = {name: 1 << i for i, (name, _) in enumerate(FIELDS)}
FIELD_OF = {name: (i, scale) for i, (name, scale) in enumerate(FIELDS)}
STATIC = ("bib", "name", "gender", "category", "status", "splits", "last_checkpoint")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class DecodeError(ValueError):
    """A v2 message that does not fit the state it was decoded against."""


# ---- integers --------------------------------------------------------------------------


def varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def zigzag(out: bytearray, value: int) -> None:
    varint(out, value * 2 if value >= 0 else -value * 2 - 1)


class Reader:
    __slots__ = ("at", "data")

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def varint(self) -> int:
        value = shift = 0
        while True:
            if self.at >= len(self.data):
                raise DecodeError("message ends inside a number")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def zigzag(self) -> int:
        value = self.varint()
        return value // 2 if value % 2 == 0 else -(value + 1) // 2

    def rest(self) -> bytes:
        return self.data[self.at :]


# ---- values at their precision ---------------------------------------------------------


_time_cache: dict[str, int | None] = {}


def time_ms(text: Any) -> int | None:
    """The ms of an ISO time written as v1 writes it (`...:SSZ` or `...:SS.mmmZ`), or None
    when the text would not come back identical. Athletes of one tick share a time: each
    distinct text is parsed once."""
    if not isinstance(text, str) or not text.endswith("Z"):
        return None
    if text in _time_cache:
        return _time_cache[text]
    try:
        ms = (datetime.fromisoformat(text) - _EPOCH) // _MS
    except (ValueError, TypeError):
        ms = None
    if ms is not None and time_text(ms) != text:
        ms = None
    if len(_time_cache) > 4096:
        _time_cache.clear()
    _time_cache[text] = ms
    return ms


@functools.lru_cache(maxsize=4096)
def time_text(ms: int) -> str:
    """The v1 text of a time in ms. Cached: the athletes of one tick share a time, and
    formatting it was a tenth of a receiver's CPU (py-spy, a bench client of 250 sockets
    decoding 1,000-athlete frames, 2026-12-01)."""
    moment = _EPOCH + ms * _MS
    fraction = f".{ms % 1000:03d}" if ms % 1000 else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def coded(name: str, scale: int, value: Any) -> int | None:
    """`value` as the integer on the wire, or None when that would not give it back."""
    if scale == 0:
        return time_ms(value)
    kind = type(value)
    if kind is not float and kind is not int:  # (exact types first: the relay's hot path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
    if name in INTEGER_FIELDS:
        return value if isinstance(value, int) else None
    try:
        number = round(value * scale)
    except (OverflowError, ValueError):
        return None
    return number if number / scale == value else None


def value_of(name: str, scale: int, number: int) -> Any:
    if scale == 0:
        return time_text(number)
    return number if name in INTEGER_FIELDS else number / scale


def flatten(athlete: Mapping) -> Mapping:
    """`athlete` with each pair of numbers (`PAIRS`) as its two fields; as is otherwise."""
    out = None
    for key, names in PAIRS.items():
        value = athlete.get(key)
        if isinstance(value, list) and len(value) == 2:
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                out = dict(athlete) if out is None else out
                del out[key]
                out[names[0]], out[names[1]] = value
    return athlete if out is None else out


_HALVES = {name: (key, i) for key, names in PAIRS.items() for i, name in enumerate(names)}


def flat_value(athlete: Mapping, name: str) -> Any:
    """`flatten(athlete).get(name)` for a field of the table (`FIELDS`), without copying
    the athlete: the relay reads a few fields of each of 1,000 previous forms a frame."""
    half = _HALVES.get(name)
    if half is None:
        return athlete.get(name)
    pair = flatten({half[0]: athlete.get(half[0])})
    return pair[name] if name in pair else athlete.get(name)


def unflatten(partial: dict, known: Mapping | None) -> dict:
    """`partial` (decoded fields of one athlete) with the pair fields back as their pair;
    a half not in `partial` is what the receiver holds (`known`)."""
    for key, (low, high) in PAIRS.items():
        if low in partial or high in partial:
            base = (known or {}).get(key) or [None, None]
            partial[key] = [partial.pop(low, base[0]), partial.pop(high, base[1])]
    return partial


def write_clock(out: bytearray, clock_s: Any, extras: dict) -> None:
    if clock_s is None:
        varint(out, 0)
        return
    ms = coded("clock_s", 1000, clock_s)
    if ms is None:
        extras["clock_s"] = clock_s
        varint(out, 1)
    else:
        varint(out, (ms * 2 if ms >= 0 else -ms * 2 - 1) + 2)


def read_clock(reader: Reader, extras: Mapping) -> Any:
    tag = reader.varint()
    if tag == 0:
        return None
    if tag == 1:
        return extras.get("clock_s")
    number = tag - 2
    return (number // 2 if number % 2 == 0 else -(number + 1) // 2) / 1000
