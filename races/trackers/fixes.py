"""What each tracking app sends, read into one `Fix` (plain Python, no Django).

- OsmAnd protocol (OsmAnd, Traccar Client before 9): query or form parameters, as
  Traccar's own decoder reads them: `id`/`deviceid`, `lat`, `lon` (or `location=lat,lon`),
  `timestamp` (Unix seconds, or ms when it does not fit a signed 32-bit int, or ISO 8601,
  or `yyyy-MM-dd HH:mm:ss` UTC), `altitude`, `speed` in KNOTS (Traccar's decoder converts
  the parameter from knots), `bearing`/`heading`, `accuracy` (m) or `hdop`, `batt` (%).
- Traccar Client 9+: a JSON body `{"location": {"timestamp", "coords": {...}, "battery":
  {"level": 0..1}}, "device_id"}`, speed in m/s.
- OwnTracks (HTTP mode): `{"_type": "location", "lat", "lon", "tst" (s), "alt", "acc",
  "vel" (km/h), "batt"}`; other `_type`s are not positions.
- Traccar's position forwarding (`forward.type=json`): `{"position": {"fixTime",
  "latitude", "longitude", "altitude", "speed" (knots), "accuracy", "attributes":
  {"batteryLevel"}}, "device": {"uniqueId"}}`.

Anything unusable raises `Malformed` with a reason for the 400 answer. Numbers must be
finite and in range: apps are not all ours, and a NaN must never reach the fanout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

KNOT_MPS = 1852.0 / 3600.0
KMH_MPS = 1000.0 / 3600.0
# A phone's GNSS error per unit of HDOP (its "user equivalent range error"): accuracy in
# metres is estimated as HDOP x this when an app sends only `hdop`.
HDOP_METRES = 5.0
MAX_SPEED_MPS = 1000.0  # anything faster is a broken device, not an athlete
MAX_INT32 = 2**31 - 1
MAX_TOKEN = 200


class Malformed(ValueError):
    """A request no app would send in this form; the message says what is wrong."""


@dataclass(frozen=True)
class Fix:
    """One position as a device reported it, units converted (m, m/s, %)."""

    token: str
    time: datetime
    latitude: float
    longitude: float
    elevation: float | None = None
    speed_mps: float | None = None
    accuracy_m: float | None = None
    battery_pct: float | None = None


# ---- OsmAnd protocol (query / form parameters) ------------------------------------------


def from_osmand_params(params: Mapping[str, str]) -> Fix:
    """A fix from OsmAnd's parameters (a QueryDict or dict of first values)."""
    token = _token(params.get("id") or params.get("deviceid"))
    if params.get("location") and not (params.get("lat") or params.get("lon")):
        parts = str(params["location"]).split(",")
        if len(parts) != 2:
            raise Malformed("location must be 'latitude,longitude'")
        latitude, longitude = _number(parts[0], "lat"), _number(parts[1], "lon")
    else:
        latitude = _number(_required(params, "lat"), "lat")
        longitude = _number(_required(params, "lon"), "lon")
    accuracy = _optional(params.get("accuracy"), "accuracy")
    if accuracy is None:
        hdop = _optional(params.get("hdop"), "hdop")
        accuracy = None if hdop is None else hdop * HDOP_METRES
    speed_knots = _optional(params.get("speed"), "speed")
    return _fix(
        token,
        osmand_time(_required(params, "timestamp")),
        latitude,
        longitude,
        elevation=_optional(params.get("altitude"), "altitude"),
        speed_mps=None if speed_knots is None else speed_knots * KNOT_MPS,
        accuracy_m=accuracy,
        battery_pct=_optional(params.get("batt"), "batt"),
    )


def osmand_time(value: object) -> datetime:
    """The `timestamp` parameter as Traccar reads it: an integer is seconds when it fits
    a signed 32-bit int and milliseconds otherwise; else ISO 8601 or `yyyy-MM-dd HH:mm:ss`."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        seconds = number if number < MAX_INT32 else number / 1000.0
        return _from_unix(seconds)
    if "T" not in text:
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            pass
    return iso_time(text, "timestamp")


# ---- Traccar Client 9 (JSON) -------------------------------------------------------------


def from_traccar_client(body: object, token: str | None = None) -> Fix:
    """A fix from Traccar Client 9's JSON body (`token` if the URL carried the id)."""
    data = _object(body, "the body")
    location = _object(data.get("location"), "location")
    coords = _object(location.get("coords"), "location.coords")
    battery = location.get("battery")
    level = None
    if battery is not None:
        level = _optional(_object(battery, "location.battery").get("level"), "battery.level")
        if level is not None and not 0.0 <= level <= 1.0:
            level = None  # -1: unknown (the SDK's value on devices that do not say)
    return _fix(
        _token(data.get("device_id") or token),
        iso_time(location.get("timestamp"), "location.timestamp"),
        _number(coords.get("latitude"), "coords.latitude"),
        _number(coords.get("longitude"), "coords.longitude"),
        elevation=_optional(coords.get("altitude"), "coords.altitude"),
        speed_mps=_non_negative(_optional(coords.get("speed"), "coords.speed")),
        accuracy_m=_optional(coords.get("accuracy"), "coords.accuracy"),
        battery_pct=None if level is None else level * 100.0,
    )


# ---- OwnTracks (HTTP mode) -------------------------------------------------------------


def from_owntracks(body: object, token: str) -> Fix | None:
    """A fix from an OwnTracks message, or None for a message that is no location."""
    data = _object(body, "the body")
    kind = data.get("_type")
    if not isinstance(kind, str):
        raise Malformed("an OwnTracks message has a _type")
    if kind != "location":
        return None
    velocity = _optional(data.get("vel"), "vel")
    battery = _optional(data.get("batt"), "batt")
    return _fix(
        _token(token),
        _from_unix(_number(_required(data, "tst"), "tst")),
        _number(_required(data, "lat"), "lat"),
        _number(_required(data, "lon"), "lon"),
        elevation=_optional(data.get("alt"), "alt"),
        speed_mps=None if velocity is None or velocity < 0 else velocity * KMH_MPS,
        accuracy_m=_optional(data.get("acc"), "acc"),
        battery_pct=battery if battery is None or battery >= 0 else None,
    )


# ---- Traccar server forwarding (forward.type=json) -------------------------------------


def from_traccar_forward(body: object, token: str | None = None) -> Fix:
    """A fix from Traccar's position forward; the token is the device's uniqueId unless
    the URL carries one (`?token=`)."""
    data = _object(body, "the body")
    position = _object(data.get("position"), "position")
    device = data.get("device")
    unique_id = _object(device, "device").get("uniqueId") if device is not None else None
    attributes = position.get("attributes")
    battery = None
    if attributes is not None:
        battery = _optional(_object(attributes, "position.attributes").get("batteryLevel"),
                            "batteryLevel")  # fmt: skip
    fix_time = position.get("fixTime")
    if isinstance(fix_time, int | float) and not isinstance(fix_time, bool):
        when = _from_unix(fix_time / 1000.0)  # some versions write epoch milliseconds
    else:
        when = iso_time(fix_time, "position.fixTime")
    speed_knots = _optional(position.get("speed"), "position.speed")
    accuracy = _optional(position.get("accuracy"), "position.accuracy")
    return _fix(
        _token(token or unique_id),
        when,
        _number(position.get("latitude"), "position.latitude"),
        _number(position.get("longitude"), "position.longitude"),
        elevation=_optional(position.get("altitude"), "position.altitude"),
        speed_mps=None if speed_knots is None else speed_knots * KNOT_MPS,
        accuracy_m=accuracy or None,  # Traccar writes 0.0 for "not reported"
        battery_pct=battery,
    )


# ---- shared checks -----------------------------------------------------------------------


def iso_time(value: object, field: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC (apps send UTC)."""
    if not isinstance(value, str) or not value or len(value) > 40:
        raise Malformed(f"{field} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise Malformed(f"{field} {value!r} is not an ISO 8601 time") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_unix(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise Malformed(f"time {seconds:.0f} is out of range") from error


def _fix(token: str, time: datetime, latitude: float, longitude: float, **extra) -> Fix:
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise Malformed(f"position {latitude}, {longitude} is out of range")
    if time.year < 2000:
        raise Malformed(f"time {time.isoformat()} is before 2000: the device clock is not set")
    speed = extra.get("speed_mps")
    if speed is not None and (speed < 0 or speed > MAX_SPEED_MPS):
        extra["speed_mps"] = None
    accuracy = extra.get("accuracy_m")
    if accuracy is not None and accuracy < 0:
        extra["accuracy_m"] = None
    battery = extra.get("battery_pct")
    if battery is not None and not 0.0 <= battery <= 100.0:
        extra["battery_pct"] = None
    return Fix(token, time, latitude, longitude, **extra)


def _token(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Malformed("no device id: send the device token as the app's device identifier")
    if len(value) > MAX_TOKEN:
        raise Malformed("the device id is too long to be a token")
    return value.strip()


def _object(value: object, field: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise Malformed(f"{field} must be a JSON object")
    return value


def _required(data: Mapping, key: str) -> object:
    value = data.get(key)
    if value is None or value == "":
        raise Malformed(f"{key} is missing")
    return value


def _number(value: object, field: str) -> float:
    """A finite number, from JSON or from a parameter's text."""
    if isinstance(value, bool):
        raise Malformed(f"{field} must be a number")
    if isinstance(value, str):
        if len(value) > 40:
            raise Malformed(f"{field} must be a number")
        try:
            value = float(value)
        except ValueError as error:
            raise Malformed(f"{field} must be a number, not {value!r:.40}") from error
    if not isinstance(value, int | float):
        raise Malformed(f"{field} must be a number")
    try:
        number = float(value)
    except OverflowError as error:  # a JSON integer with hundreds of digits
        raise Malformed(f"{field} is out of range") from error
    if not math.isfinite(number):
        raise Malformed(f"{field} must be finite")
    return number


def _optional(value: object, field: str) -> float | None:
    return None if value is None or value == "" else _number(value, field)


def _non_negative(value: float | None) -> float | None:
    return None if value is None or value < 0 else value  # -1: the SDK's "unknown"
