"""Tracker fixes (no seq) on a tracked race: matched, checked, given a seq, snapped forward.

The relay's rules before the race state (`races.relay.tracker_fixes`), with the race state
itself: what a spectator would see of positions that real trackers and the old system's
producers send, late, twice, out of order, wrong.
"""

import math
from datetime import UTC, datetime, timedelta

import pytest

from races import wire
from races.operations import metrics
from races.relay import tracker_fixes
from races.relay.athlete_state import AthleteSpec
from races.relay.events import InvalidEvent
from races.relay.tracker_fixes import TrackerIntake, TrackerLimits, TrackerRefused
from races.wire import FINISHED, RUNNING
from tests.race_state_builders import (
    ATHLETES,
    START,
    board,
    loop_course,
    make_state,
    out_and_back_course,
    point_at,
)

LIMITS = TrackerLimits(max_speed_mps=12.0, max_accuracy_m=100.0, future_tolerance_s=60.0)


def fix(points, second: float, distance: float, wobble: float = 0.0, **fields) -> dict:
    """A fix in the old system's contract: a name, no id, no bib, no seq."""
    lat, lon = point_at(points, distance, wobble)
    event = {
        "athlete": "Ada Fast",
        "gender": "female",
        "race": "race-test",
        "location": {"latitude": lat, "longitude": lon},
        "elevation": None,
        "time": wire.iso(START + timedelta(seconds=second)),
        "event": "running",
    }
    event.update(fields)
    return event


class Tracked:
    """A tracked race's state and tracker intake, fed as the relay feeds them."""

    def __init__(self, points) -> None:
        self.points = points
        self.state = make_state(points)
        self.intake = TrackerIntake(self.state, LIMITS)

    def send(self, event: dict):
        return tracker_fixes.apply(self.state, self.intake, event)

    def run(self, name: str, speed: float, until_s: float, every_s: float = 30.0) -> None:
        second = every_s
        while second <= until_s:
            distance = min(speed * second, self.points[-1][3])
            wobble = 6.0 * math.sin(second * 0.37 + len(name))
            self.send(fix(self.points, second, distance, wobble, athlete=name))
            second += every_s


def refused_count(reason: str) -> float:
    return metrics.RELAY_TRACKER_REFUSED.labels(reason)._value.get()


def test_a_fix_without_seq_is_matched_by_name_id_or_bib_and_gets_the_tracker_seq():
    race = Tracked(out_and_back_course())
    by_name = race.send(fix(race.points, 30, 90, athlete="  ada FAST "))
    by_bib = race.send(fix(race.points, 30, 60, athlete="who knows", bib="2"))
    by_id = race.send(fix(race.points, 30, 30, athlete="Ada Fast", athlete_id=3))
    assert (by_name.athlete_id, by_bib.athlete_id, by_id.athlete_id) == (1, 2, 3)
    assert by_name.seq == wire.tracker_seq(1, START + timedelta(seconds=30))
    assert by_name.distance_m == pytest.approx(90, abs=15)
    assert board(race.state)[1]["status"] == RUNNING


def test_an_unknown_athlete_is_refused_and_counted():
    race = Tracked(out_and_back_course())
    before = refused_count("unknown_athlete")
    for event in (
        fix(race.points, 30, 90, athlete="Nobody Here"),
        fix(race.points, 30, 90, bib="999"),
        fix(race.points, 30, 90, athlete_id=999),
    ):
        with pytest.raises(TrackerRefused, match="not on the start list"):
            race.send(event)
    assert refused_count("unknown_athlete") == before + 3
    assert {a["status"] for a in race.state.leaderboard()} == {"not_started"}


def test_a_seq_less_event_on_a_simulated_race_is_refused_as_before():
    state = make_state(out_and_back_course())
    with pytest.raises(InvalidEvent, match="seq must be an integer"):
        tracker_fixes.apply(state, None, fix(out_and_back_course(), 30, 90))


def test_duplicates_are_stored_once_and_a_late_batch_never_moves_the_athlete_back():
    race = Tracked(out_and_back_course())
    first = race.send(fix(race.points, 60, 180))
    assert race.send(fix(race.points, 60, 180)) is None  # the phone sent it again
    newest = race.send(fix(race.points, 300, 900))
    # The phone's offline buffer arrives late, newest first.
    late = [race.send(fix(race.points, second, 3 * second)) for second in (240, 180, 120)]
    assert all(f.history for f in late) and not newest.history and not first.history
    assert [round(f.distance_m, -1) for f in late] == [720, 540, 360]
    assert board(race.state)[1]["distance_m"] == pytest.approx(900, abs=15)
    # The same late fix again has the same seq: the database's (race, seq) key stores it once.
    again = race.send(fix(race.points, 180, 540))
    assert again.seq == late[1].seq


def test_fixes_in_the_future_before_the_start_or_too_far_too_fast_are_refused():
    race = Tracked(out_and_back_course())
    race.send(fix(race.points, 60, 180))
    counts = {r: refused_count(r) for r in tracker_fixes.REASONS}
    future = datetime.now(UTC) + timedelta(minutes=5)
    cases = {
        "future": fix(race.points, 0, 200, time=wire.iso(future)),
        "before_start": fix(race.points, -60, 0),
        "poor_accuracy": fix(race.points, 90, 270, accuracy_m=250.0),
        # 2 km in 30 s: a GPS jump, or a phone in a car.
        "impossible_speed": fix(race.points, 90, 2180),
        "bad_fix": fix(race.points, 90, 270, source="carrier-pigeon"),
    }
    for reason, event in cases.items():
        with pytest.raises(TrackerRefused) as refused:
            race.send(event)
        assert refused.value.reason == reason
        assert refused_count(reason) == counts[reason] + 1
    assert board(race.state)[1]["distance_m"] == pytest.approx(180, abs=15)
    # A good fix a minute ahead of now (a phone's clock) is taken; accuracy within limits too.
    assert race.send(fix(race.points, 90, 270, accuracy_m=20.0)).distance_m > 250


def test_loop_course_ranks_right_with_fixes_near_the_shared_start_and_finish():
    points = loop_course()
    length = points[-1][3]
    race = Tracked(points)
    # After 20 minutes Ada is ~250 m before the finish, Dan ~240 m after the start: the
    # same ground, opposite ends of the race.
    race.run("Ada Fast", (length - 250) / 1200, until_s=1200)
    race.run("Dan Walker", 0.2, until_s=1200)
    athletes = board(race.state)
    assert athletes[1]["distance_m"] == pytest.approx(length - 250, abs=30)
    assert athletes[4]["distance_m"] == pytest.approx(240, abs=30)
    assert [a["id"] for a in race.state.leaderboard()][:2] == [1, 4]
    # Ada crosses the line (a fix next to the start): she finishes, she is not sent back.
    race.send(fix(points, 1260, length - 5, athlete="Ada Fast"))
    assert board(race.state)[1]["status"] == FINISHED
    assert board(race.state)[1]["splits"][-1]["split_s"] == pytest.approx(1260, abs=1)
    # Dan's first fix after the start is near the finish line too: he stays at the start.
    fresh = Tracked(points)
    fresh.send(fix(points, 20, 8, athlete="Dan Walker"))
    assert board(fresh.state)[4]["distance_m"] < 50


def test_out_and_back_ranks_the_athlete_on_the_way_back_ahead():
    race = Tracked(out_and_back_course())
    race.run("Ada Fast", 3.0, until_s=1000, every_s=20)  # turned: 3,000 m
    race.run("Bob Steady", 2.0, until_s=1000, every_s=20)  # on the way out: 2,000 m
    athletes = board(race.state)
    assert athletes[1]["distance_m"] == pytest.approx(3000, abs=30)
    assert athletes[2]["distance_m"] == pytest.approx(2000, abs=30)
    assert athletes[1]["rank"] == 1 and athletes[2]["rank"] == 2


def test_the_device_keeps_the_newest_fix_battery_and_source_for_race_control():
    race = Tracked(out_and_back_course())
    race.send(fix(race.points, 120, 360, battery_pct=71.4, source="owntracks", accuracy_m=8))
    race.send(fix(race.points, 60, 180, battery_pct=80.0, source="owntracks"))  # late
    device = race.intake.devices[1].as_dict()
    assert device == {
        "source": "owntracks",
        "fix_time": wire.iso(START + timedelta(seconds=120)),
        "battery_pct": 71,
        "accuracy_m": 8.0,
    }
    assert 2 not in race.intake.devices
    assert "battery_pct" not in board(race.state)[1]  # never in the public athlete form


def test_positions_are_counted_by_source():
    race = Tracked(out_and_back_course())
    counter = metrics.RELAY_POSITIONS_BY_SOURCE
    before = counter.labels("contract")._value.get(), counter.labels("osmand")._value.get()
    race.send(fix(race.points, 30, 90))
    race.send(fix(race.points, 30, 90, athlete="Bob Steady", source="osmand"))
    after = counter.labels("contract")._value.get(), counter.labels("osmand")._value.get()
    assert after == (before[0] + 1, before[1] + 1)


def test_every_athlete_of_the_start_list_can_be_named():
    race = Tracked(out_and_back_course())
    for spec in ATHLETES:
        race.send(fix(race.points, 30, 60, athlete=spec.name.upper()))
    assert {a["status"] for a in race.state.leaderboard()} == {RUNNING}


def test_a_name_two_athletes_share_matches_neither():
    twins = [*ATHLETES, AthleteSpec(5, "5", "ada fast", "female", "W30")]
    state = make_state(out_and_back_course(), athletes=twins)
    intake = TrackerIntake(state, LIMITS)
    with pytest.raises(TrackerRefused, match="not on the start list"):
        tracker_fixes.apply(state, intake, fix(out_and_back_course(), 30, 90))
    by_bib = tracker_fixes.apply(state, intake, fix(out_and_back_course(), 30, 90, bib="5"))
    assert by_bib.athlete_id == 5


def test_a_fix_the_race_state_refuses_leaves_the_device_as_it_was():
    race = Tracked(out_and_back_course())
    race.send(fix(race.points, 60, 180, battery_pct=50.0))
    with pytest.raises(InvalidEvent, match="unknown event kind"):
        race.send(fix(race.points, 90, 270, battery_pct=49.0, event="teleport"))
    assert race.intake.devices[1].battery_pct == 50.0
