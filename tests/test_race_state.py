"""Race state and leaderboard: distance along the course, ranks, gaps, splits, status."""

import itertools
import math
from datetime import UTC, datetime, timedelta

import gpxpy
import pytest

from races.relay.race_state import (
    DNF,
    FINISHED,
    NOT_STARTED,
    RUNNING,
    AthleteSpec,
    CheckpointSpec,
    CourseLine,
    InvalidEvent,
    RaceState,
)
from tests.conftest import SAMPLE_GPX

GPX_DIR = SAMPLE_GPX
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
M_PER_DEG = gpxpy.geo.ONE_DEGREE


# ---- course builders ---------------------------------------------------------------------


def with_distances(latlons: list[tuple[float, float]]) -> list[list]:
    """[lat, lon, ele, cumulative distance] like Course.points, distances from gpxpy."""
    points, total = [], 0.0
    for i, (lat, lon) in enumerate(latlons):
        if i:
            total += gpxpy.geo.haversine_distance(*latlons[i - 1], lat, lon)
        points.append([lat, lon, None, total])
    return points


def loop_course(radius_m: float = 800.0, stem_m: float = 400.0, lane_m: float = 3.0) -> list[list]:
    """A loop whose start and finish share their first and last `stem_m` of trail.

    Out along the stem, once round a circle, back along the stem on the other side of
    the trail (`lane_m` away) to a finish next to the start.
    """
    lat0, lon0 = 47.0, 11.0
    m_per_deg_lon = M_PER_DEG * math.cos(math.radians(lat0))
    stem_out = [(lat0 + stem_m * i / 20 / M_PER_DEG, lon0) for i in range(20)]
    centre_north = stem_m + radius_m
    circle = []
    for i in range(241):
        angle = 2 * math.pi * i / 240
        north = centre_north - radius_m * math.cos(angle)
        east = radius_m * math.sin(angle)
        circle.append((lat0 + north / M_PER_DEG, lon0 + east / m_per_deg_lon))
    lane = lane_m / m_per_deg_lon
    stem_back = [(lat0 + stem_m * (20 - i) / 20 / M_PER_DEG, lon0 + lane) for i in range(1, 21)]
    return with_distances(stem_out + circle + stem_back)


def out_and_back_course(leg_m: float = 2500.0, offset_m: float = 4.0) -> list[list]:
    """North for `leg_m`, then back south on the other side of the same trail."""
    lat0, lon0 = 47.0, 11.0
    east = offset_m / (M_PER_DEG * math.cos(math.radians(lat0)))
    out = [(lat0 + leg_m * i / 50 / M_PER_DEG, lon0) for i in range(51)]
    back = [(lat0 + leg_m * (50 - i) / 50 / M_PER_DEG, lon0 + east) for i in range(51)]
    return with_distances(out + back)


def gpx_course(name: str) -> list[list]:
    with (GPX_DIR / name).open(encoding="utf-8-sig") as handle:
        gpx = gpxpy.parse(handle)
    return with_distances(
        [(p.latitude, p.longitude) for t in gpx.tracks for s in t.segments for p in s.points]
    )


def point_at(points: list[list], distance: float, wobble_m: float = 0.0) -> tuple[float, float]:
    """Where the course is at `distance`, moved `wobble_m` sideways like GPS noise."""
    for a, b in itertools.pairwise(points):
        if a[3] <= distance <= b[3] and b[3] > a[3]:
            t = (distance - a[3]) / (b[3] - a[3])
            lat, lon = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
            return lat + wobble_m / M_PER_DEG, lon + wobble_m / M_PER_DEG
    return points[-1][0], points[-1][1]


# ---- race builders -----------------------------------------------------------------------

ATHLETES = [
    AthleteSpec(1, "1", "Ada Fast", "female", "W30"),
    AthleteSpec(2, "2", "Bob Steady", "male", "M40"),
    AthleteSpec(3, "3", "Cleo Slow", "female", "W30"),
    AthleteSpec(4, "4", "Dan Walker", "male", "M40"),
]


def make_state(points, checkpoints=(), athletes=ATHLETES) -> RaceState:
    return RaceState(
        length_m=points[-1][3],
        checkpoints=checkpoints,
        athletes=athletes,
        start_time=START,
        course=CourseLine(points),
    )


class Feed:
    """Publishes events the way the simulator does, with increasing seq."""

    def __init__(self, state: RaceState) -> None:
        self.state = state
        self.seq = 0

    def event(self, athlete: int, second: float, kind: str = "running", **fields) -> dict:
        self.seq += 1
        event = {
            "athlete_id": athlete,
            "seq": self.seq,
            "event": kind,
            "time": (START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z"),
            "location": {"latitude": 47.0, "longitude": 11.0},
        }
        event.update(fields)
        return event

    def send(self, athlete: int, second: float, kind: str = "running", **fields):
        return self.state.apply(self.event(athlete, second, kind, **fields))

    def track(self, points, athlete: int, second: float, distance: float, wobble: float = 0.0):
        lat, lon = point_at(points, distance, wobble)
        return self.send(athlete, second, location={"latitude": lat, "longitude": lon})


def run_tracked(points, speeds: dict[int, float], until_s: float, every_s: float = 30.0):
    """Every athlete sends a position (no distance_m, as a real tracker) every `every_s`."""
    state = make_state(points)
    feed = Feed(state)
    for athlete in speeds:
        feed.send(
            athlete,
            0,
            "start",
            location=dict(zip(("latitude", "longitude"), points[0][:2], strict=True)),
        )
    second = every_s
    while second <= until_s:
        for athlete, speed in speeds.items():
            distance = min(speed * second, points[-1][3])
            wobble = 6.0 * math.sin(second * 0.37 + athlete)  # deterministic GPS noise
            feed.track(points, athlete, second, distance, wobble)
        second += every_s
    return state


def board(state: RaceState) -> dict[int, dict]:
    return {a["id"]: a for a in state.leaderboard()}


# ---- distance along the course -----------------------------------------------------------


def test_loop_course_keeps_the_leader_near_the_finish_and_the_back_near_the_start():
    points = loop_course()
    length = points[-1][3]
    # After 20 minutes Ada is ~250 m before the finish, Dan ~240 m after the start: the
    # same few hundred metres of ground, at opposite ends of the race.
    state = run_tracked(points, {1: (length - 250) / 1200, 4: 0.2}, until_s=1200)
    athletes = board(state)
    assert athletes[1]["distance_m"] == pytest.approx(length - 250, abs=30)
    assert athletes[4]["distance_m"] == pytest.approx(240, abs=30)
    assert [a["id"] for a in state.leaderboard()][:2] == [1, 4]


def test_loop_course_finish_is_detected_at_the_line_not_at_the_start():
    points = loop_course()
    length = points[-1][3]
    state = run_tracked(points, {1: length / 1200, 2: length / 1500}, until_s=1290)
    athletes = board(state)
    assert athletes[1]["status"] == FINISHED
    assert athletes[1]["splits"][-1]["split_s"] == pytest.approx(1200, abs=31)
    assert athletes[2]["status"] == RUNNING
    assert athletes[2]["distance_m"] == pytest.approx(length * 1290 / 1500, abs=30)


def test_out_and_back_ranks_the_athlete_on_the_way_back_ahead():
    points = out_and_back_course()
    # At 1000 s Ada has turned (3,000 m: 500 m on the way back, 2,000 m from the start);
    # Bob is on the way out at 2,000 m. They pass each other on the same trail.
    state = run_tracked(points, {1: 3.0, 2: 2.0}, until_s=1000, every_s=20)
    athletes = board(state)
    assert athletes[1]["distance_m"] == pytest.approx(3000, abs=30)
    assert athletes[2]["distance_m"] == pytest.approx(2000, abs=30)
    assert athletes[1]["rank"] == 1 and athletes[2]["rank"] == 2


def test_distance_never_goes_backwards_on_gps_noise():
    points = out_and_back_course()
    state = make_state(points)
    feed = Feed(state)
    feed.track(points, 1, 60, 300)
    feed.track(points, 1, 90, 280)  # the fix jumped back 20 m
    assert board(state)[1]["distance_m"] >= 299


def test_off_course_fix_keeps_the_last_distance():
    points = out_and_back_course()
    state = make_state(points)
    feed = Feed(state)
    feed.track(points, 1, 60, 300)
    feed.send(1, 90, location={"latitude": 47.1, "longitude": 11.1})  # kilometres away
    athlete = board(state)[1]
    assert athlete["distance_m"] == pytest.approx(300, abs=10)
    assert athlete["lat"] == 47.1


@pytest.mark.parametrize(
    ("gpx", "shape"),
    [
        ("trailrun-vtr-classic-2019.gpx", "loop"),
        ("run-garmin-connect-hr-cadence.gpx", "out-and-back"),
    ],
)
def test_real_gpx_courses_rank_by_true_distance(gpx, shape):
    points = gpx_course(gpx)
    length = points[-1][3]
    first, last = points[0], points[-1]
    gap = gpxpy.geo.haversine_distance(first[0], first[1], last[0], last[1])
    assert gap < 200, f"{gpx} is a {shape}: its start is next to its finish"
    # Speeds chosen so that, at the end, the fastest is just before the finish and the
    # slowest just after the start: the ground the course covers twice.
    until = 3600.0
    speeds = {
        1: (length - 300) / until,
        2: length * 0.6 / until,
        3: length * 0.3 / until,
        4: 250 / until,
    }
    state = run_tracked(points, speeds, until_s=until, every_s=15)
    athletes = board(state)
    for athlete, speed in speeds.items():
        assert athletes[athlete]["distance_m"] == pytest.approx(speed * until, abs=40), athlete
    assert [a["id"] for a in state.leaderboard()] == [1, 2, 3, 4]


def test_simulator_distance_is_taken_as_given():
    points = loop_course()
    state = make_state(points)
    feed = Feed(state)
    feed.send(1, 600, distance_m=2000.0)  # location says "start"; distance wins
    assert board(state)[1]["distance_m"] == 2000.0


# ---- ranking, gaps, splits, status -------------------------------------------------------

CHECKPOINTS = [
    CheckpointSpec("Start", 0.0, "start"),
    CheckpointSpec("CP1", 1000.0),
    CheckpointSpec("CP2", 2000.0),
    CheckpointSpec("Finish", 3000.0, "finish"),
]


def simulated_state() -> tuple[RaceState, Feed]:
    points = with_distances([(47.0 + 3000.0 * i / 30 / M_PER_DEG, 11.0) for i in range(31)])
    state = make_state(points, CHECKPOINTS)
    return state, Feed(state)


def test_finished_rank_by_finish_time_ahead_of_runners_and_dnf_last():
    state, feed = simulated_state()
    for athlete in (1, 2, 3, 4):
        feed.send(athlete, 0, "start", distance_m=0.0)
    feed.send(3, 700, distance_m=2900.0)  # furthest runner
    feed.send(2, 800, "finish", distance_m=3000.0)
    feed.send(1, 760, "finish", distance_m=3000.0)
    feed.send(4, 500, "dnf", distance_m=2950.0)
    order = [(a["id"], a["status"], a["rank"]) for a in state.leaderboard()]
    assert order == [(1, FINISHED, 1), (2, FINISHED, 2), (3, RUNNING, 3), (4, DNF, None)]
    athletes = board(state)
    assert athletes[2]["gap_s"] == 40.0
    assert athletes[1]["eta_s"] == 0.0


def test_ranks_per_gender_and_category():
    state, feed = simulated_state()
    for athlete, distance in ((1, 900.0), (2, 1200.0), (3, 300.0), (4, 600.0)):
        feed.send(athlete, 300, distance_m=distance)
    ranks = {
        a["id"]: (a["rank"], a["rank_gender"], a["rank_category"]) for a in state.leaderboard()
    }
    assert ranks == {2: (1, 1, 1), 1: (2, 1, 1), 4: (3, 2, 2), 3: (4, 2, 2)}


def test_not_started_athletes_have_no_rank_and_come_after_runners():
    state, feed = simulated_state()
    feed.send(3, 60, distance_m=100.0)
    order = state.leaderboard()
    assert [a["id"] for a in order] == [3, 1, 2, 4]
    assert [a["status"] for a in order[1:]] == [NOT_STARTED] * 3
    assert order[1]["rank"] is None and order[1]["gap_s"] is None


def test_gap_is_time_behind_the_leader_at_the_same_point_of_the_course():
    state, feed = simulated_state()
    feed.send(1, 500, distance_m=1000.0)  # leader at CP1 after 500 s
    feed.send(1, 1000, distance_m=2000.0)  # and CP2 after 1000 s
    feed.send(1, 1200, distance_m=2300.0)
    feed.send(2, 1200, distance_m=1500.0)  # the leader was here at 750 s
    athletes = board(state)
    assert athletes[1]["gap_s"] == 0.0
    assert athletes[2]["gap_s"] == pytest.approx(450.0)


def test_splits_are_interpolated_at_the_checkpoint_distance():
    state, feed = simulated_state()
    feed.send(1, 400, distance_m=800.0)
    feed.send(1, 600, distance_m=1200.0)  # crossed CP1 at 800 + 200 * (200/400) s
    feed.send(1, 1300, distance_m=2600.0)  # crossed CP2 at 600 + 700 * (800/1400) s
    athlete = board(state)[1]
    assert [(s["name"], s["split_s"]) for s in athlete["splits"]] == [
        ("CP1", 500.0),
        ("CP2", 1000.0),
    ]
    assert athlete["last_checkpoint"]["name"] == "CP2"
    assert athlete["pace_s_per_km"] == pytest.approx(500.0)
    assert athlete["eta_s"] == pytest.approx(200.0)


def test_finish_event_records_the_finish_split():
    state, feed = simulated_state()
    feed.send(1, 1400, "finish", distance_m=3000.0)
    athlete = board(state)[1]
    assert athlete["splits"][-1] == {"name": "Finish", "distance_m": 3000.0, "split_s": 1400.0}
    feed.send(1, 1500, distance_m=3100.0)  # tracker still on after the line
    assert board(state)[1]["status"] == FINISHED
    assert board(state)[1]["splits"][-1]["split_s"] == 1400.0


def test_everyone_done_once_all_finished_or_dropped():
    state, feed = simulated_state()
    for athlete in (1, 2, 3):
        feed.send(athlete, 900, "finish", distance_m=3000.0)
    assert not state.everyone_done
    feed.send(4, 950, "dnf", distance_m=10.0)
    assert state.everyone_done


# ---- duplicates and bad events -----------------------------------------------------------


def test_duplicate_and_stale_seq_are_dropped():
    state, feed = simulated_state()
    event = feed.event(1, 100, distance_m=300.0)
    assert state.apply(event) is not None
    assert state.apply(dict(event)) is None
    assert state.apply(dict(event, seq=event["seq"] - 1, distance_m=900.0)) is None
    assert board(state)[1]["distance_m"] == 300.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"athlete_id": 99}, "start list"),
        ({"seq": "7"}, "seq"),
        ({"time": "yesterday"}, "ISO 8601"),
        ({"time": "2026-05-01T09:00:00"}, "timezone"),
        ({"location": {"latitude": 91.0, "longitude": 0.0}}, "out of range"),
        ({"location": None}, "location"),
        ({"distance_m": float("nan")}, "finite"),
        ({"event": "teleport"}, "event kind"),
    ],
)
def test_invalid_events_are_refused_with_the_reason(change, reason):
    state, feed = simulated_state()
    event = feed.event(1, 100, distance_m=10.0)
    event.update(change)
    with pytest.raises(InvalidEvent, match=reason):
        state.apply(event)


def test_seed_contract_event_identifies_the_athlete_by_name():
    state, feed = simulated_state()
    event = feed.event(2, 100, distance_m=10.0)
    del event["athlete_id"]
    event["athlete"] = "Bob Steady"
    assert state.apply(event).athlete_id == 2


# ---- frames ------------------------------------------------------------------------------


def test_take_changes_carries_movers_and_athletes_whose_rank_changed():
    state, feed = simulated_state()
    for athlete, distance in ((1, 500.0), (2, 400.0), (3, 300.0)):
        feed.send(athlete, 200, distance_m=distance)
    assert {a["id"] for a in state.take_changes().wire} == {1, 2, 3}
    assert state.take_changes().wire == []
    feed.send(3, 260, distance_m=450.0)  # Cleo passes Bob: Bob's rank changes too
    changed = {a["id"]: a for a in state.take_changes().wire}
    assert set(changed) == {2, 3}
    assert (changed[3]["rank"], changed[2]["rank"]) == (2, 3)


def test_take_changes_sends_splits_only_when_they_change():
    state, feed = simulated_state()
    feed.send(1, 600, distance_m=1100.0)
    assert state.take_changes().wire[0]["splits"][0]["name"] == "CP1"
    feed.send(1, 700, distance_m=1300.0)
    changes = state.take_changes()
    (athlete,) = changes.wire
    assert "splits" not in athlete and "last_checkpoint" not in athlete
    assert changes.full[0]["splits"][0]["name"] == "CP1"  # what the relay stores
    assert changes.full[0]["last_checkpoint"]["name"] == "CP1"
    feed.send(1, 1100, distance_m=2100.0)
    (athlete,) = state.take_changes().wire
    assert athlete["last_checkpoint"]["name"] == "CP2"
    assert [split["name"] for split in athlete["splits"]] == ["CP1", "CP2"]


def test_an_update_carries_only_what_changed_and_merges_into_the_full_athlete():
    state, feed = simulated_state()
    for athlete, distance in ((1, 500.0), (2, 400.0)):
        feed.send(athlete, 200, distance_m=distance)
    held = {a["id"]: dict(a) for a in state.take_changes().full}
    feed.send(1, 260, distance_m=700.0)  # Ada moves on; Bob's gap to her changes
    changes = state.take_changes()
    wire = {a["id"]: a for a in changes.wire}
    assert set(wire[1]) >= {"id", "distance_m", "time", "elapsed_s"}  # same lat/lon here
    assert not set(wire[1]) & {"bib", "name", "gender", "category", "rank", "status"}
    for athlete in changes.wire:
        held[athlete["id"]].update(athlete)
    assert held == {a["id"]: a for a in state.leaderboard() if a["id"] in held}


def test_restore_from_stored_public_state_gives_the_same_leaderboard():
    state, feed = simulated_state()
    feed.send(1, 600, distance_m=1100.0)
    feed.send(2, 700, "finish", distance_m=3000.0)
    feed.send(3, 650, "dnf", distance_m=200.0)
    stored = state.leaderboard()
    seqs = state.last_seqs()
    restored, _ = simulated_state()
    for public in stored:
        restored.restore(public, seqs.get(public["id"], -1))
    assert restored.leaderboard() == stored
    assert restored.apply(feed.event(1, 600, distance_m=1100.0) | {"seq": seqs[1]}) is None


def test_checkpoint_event_at_a_rounded_distance_records_its_own_time():
    points = with_distances([(47.0 + 3000.0 * i / 30 / M_PER_DEG, 11.0) for i in range(31)])
    checkpoints = [CheckpointSpec("CP1", 1000.004), CheckpointSpec("Finish", 3000.0, "finish")]
    state = make_state(points, checkpoints)
    feed = Feed(state)
    feed.send(1, 480, distance_m=990.0)
    feed.send(1, 500, "checkpoint", distance_m=1000.0, checkpoint="CP1", split_s=500.0)
    feed.send(1, 540, distance_m=1050.0)
    assert board(state)[1]["splits"] == [{"name": "CP1", "distance_m": 1000.0, "split_s": 500.0}]
