"""Each app's format read into one Fix: units, time formats, and what is refused (plain
Python, no database), plus the seq-less contract event built from a fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from races import wire
from races.trackers import fixes
from races.trackers.fixes import Malformed
from simulator.clock import iso_z

MOMENT = datetime(2026, 12, 1, 9, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "timestamp",
    ["1796117415", "1796117415000", "2026-12-01T09:30:15Z", "2026-12-01T10:30:15+01:00",
     "2026-12-01 09:30:15", "2026-12-01T09:30:15"],
)  # fmt: skip
def test_osmand_timestamps_as_traccar_reads_them(timestamp):
    assert fixes.osmand_time(timestamp) == MOMENT


def test_osmand_units_speed_in_knots_hdop_and_battery():
    fix = fixes.from_osmand_params(
        {"deviceid": "tok", "lat": "48.2", "lon": "16.3", "timestamp": "1796117415",
         "speed": "10", "altitude": "412.5", "hdop": "2", "batt": "81.5", "bearing": "3"}
    )  # fmt: skip
    assert fix.token == "tok" and fix.time == MOMENT
    assert fix.speed_mps == pytest.approx(5.144, abs=0.001)
    assert fix.accuracy_m == 10.0 and fix.battery_pct == 81.5 and fix.elevation == 412.5
    accurate = fixes.from_osmand_params(
        {"id": "tok", "location": "48.2,16.3", "timestamp": "1796117415", "accuracy": "3",
         "hdop": "9"}
    )  # fmt: skip
    assert (accurate.latitude, accurate.longitude, accurate.accuracy_m) == (48.2, 16.3, 3.0)


def test_traccar_client_9_json():
    fix = fixes.from_traccar_client(
        {"location": {"timestamp": "2026-12-01T09:30:15.250Z",
                      "coords": {"latitude": 48.2, "longitude": 16.3, "accuracy": 5,
                                 "speed": -1, "heading": -1, "altitude": 400},
                      "battery": {"level": 0.42, "is_charging": True}},
         "device_id": "tok"}
    )  # fmt: skip
    assert fix.time == MOMENT.replace(microsecond=250_000)
    assert fix.speed_mps is None and fix.battery_pct == pytest.approx(42.0)
    unknown_battery = fixes.from_traccar_client(
        {"location": {"timestamp": "2026-12-01T09:30:15Z", "battery": {"level": -1},
                      "coords": {"latitude": 1, "longitude": 2}}},
        token="from-url",
    )  # fmt: skip
    assert unknown_battery.token == "from-url" and unknown_battery.battery_pct is None


def test_owntracks_velocity_in_kmh_and_other_types():
    fix = fixes.from_owntracks(
        {"_type": "location", "lat": 48.2, "lon": 16.3, "tst": 1796117415, "vel": 18,
         "acc": 12, "alt": 400, "batt": 66},
        "tok",
    )  # fmt: skip
    assert fix.speed_mps == pytest.approx(5.0) and fix.accuracy_m == 12 and fix.battery_pct == 66
    assert fixes.from_owntracks({"_type": "waypoint", "desc": "home"}, "tok") is None


def test_traccar_forward_knots_and_epoch_milliseconds():
    body = {
        "position": {"fixTime": 1796117415000, "latitude": 48.2, "longitude": 16.3,
                     "speed": 10, "accuracy": 0.0, "attributes": {"batteryLevel": 50}},
        "device": {"uniqueId": "unique"},
    }  # fmt: skip
    fix = fixes.from_traccar_forward(body)
    assert fix.token == "unique" and fix.time == MOMENT and fix.accuracy_m is None
    assert fix.speed_mps == pytest.approx(5.144, abs=0.001) and fix.battery_pct == 50
    assert fixes.from_traccar_forward(body, token="query").token == "query"


@pytest.mark.parametrize(
    "params",
    [{"id": "t", "lat": "91", "lon": "0", "timestamp": "1796117415"},
     {"id": "t", "lat": "1", "lon": "0", "timestamp": "86400"},  # 1970: no clock
     {"id": "t" * 300, "lat": "1", "lon": "0", "timestamp": "1796117415"},
     {"id": "t", "lat": "1" * 50, "lon": "0", "timestamp": "1796117415"},
     {"id": "t", "lat": "1", "lon": "0", "timestamp": "2026-13-45T99:00:00Z"},
     {"id": "t", "lat": "1", "lon": "0", "timestamp": "9" * 30}],
)  # fmt: skip
def test_impossible_values_are_malformed(params):
    with pytest.raises(Malformed):
        fixes.from_osmand_params(params)


def test_nonsense_speed_and_battery_are_dropped_not_refused():
    fix = fixes.from_osmand_params(
        {"id": "t", "lat": "1", "lon": "2", "timestamp": "1796117415", "speed": "99999",
         "batt": "250", "accuracy": "-3"}
    )  # fmt: skip
    assert (fix.speed_mps, fix.battery_pct, fix.accuracy_m) == (None, None, None)


@dataclass
class Runner:
    name: str = "Jane Smith"
    gender: str = "female"
    bib: str = "17"
    athlete_id: int = 42


def test_the_tracker_event_is_the_contract_without_seq_and_distance():
    moment = iso_z(MOMENT.replace(microsecond=123456))
    event = wire.build_tracker_event(
        athlete=Runner(), slug="vtr", source="owntracks", time=moment,
        latitude=48.2, longitude=16.3, elevation=None, speed_mps=3.14159, battery_pct=55,
    )  # fmt: skip
    assert event == {
        "athlete": "Jane Smith", "gender": "female", "race": wire.exchange_name("vtr"),
        "location": {"latitude": 48.2, "longitude": 16.3}, "elevation": None,
        "time": "2026-12-01T09:30:15.123Z", "event": "running", "bib": "17", "athlete_id": 42,
        "source": "owntracks", "speed_mps": 3.14, "battery_pct": 55,
    }  # fmt: skip
    with pytest.raises(ValueError, match="source"):
        wire.build_tracker_event(athlete=Runner(), slug="vtr", source="pigeon", time=iso_z(MOMENT),
                            latitude=0, longitude=0)  # fmt: skip
