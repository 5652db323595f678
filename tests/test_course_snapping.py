"""Distance along the course: forward-only snapping on loops, out-and-backs, real GPX."""

import gpxpy
import pytest

from races.wire import FINISHED, RUNNING
from tests.race_state_builders import (
    Feed,
    board,
    gpx_course,
    loop_course,
    make_state,
    out_and_back_course,
    run_tracked,
)

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
