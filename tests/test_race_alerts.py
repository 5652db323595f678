"""Race control's alert rules, one test per rule, and episodes counted once."""

from datetime import UTC, datetime, timedelta

from races import wire
from races.organizer.race_alerts import RaceWatch, Thresholds, race_now
from races.relay.course_line import CourseLine
from tests.race_state_builders import M_PER_DEG, with_distances

START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
POINTS = with_distances([(47.0 + 5000.0 * i / 50 / M_PER_DEG, 11.0) for i in range(51)])
THRESHOLDS = Thresholds(
    no_position_s=300, not_moving_s=300, not_moving_m=25, off_course_m=150,
    backwards_m=200, checkpoint_gap_m=500,
)  # fmt: skip


def athlete(second: float, distance: float, *, east_m: float = 0.0, lat_at: float | None = None,
            splits=(), status=wire.RUNNING) -> dict:  # fmt: skip
    at = distance if lat_at is None else lat_at
    return wire.public_athlete(
        id=7, bib="7", name="Ana Ruiz", gender="female", category="",
        lat=47.0 + at / M_PER_DEG, lon=11.0 + east_m / (M_PER_DEG * 0.682), distance_m=distance,
        status=status, splits=list(splits), time=wire.iso(START + timedelta(seconds=second)),
    )  # fmt: skip


def watch(counted: list | None = None) -> RaceWatch:
    line = CourseLine(POINTS)
    return RaceWatch(
        THRESHOLDS, POINTS, [("CP1", 2000.0)],
        on_episode=(counted.append if counted is not None else None), snap_behind=line.snap,
    )  # fmt: skip


def at(second: float) -> datetime:
    return START + timedelta(seconds=second)


def kinds(race: RaceWatch, second: float) -> dict[str, dict]:
    return {a.kind: a.as_dict() for a in race.check(at(second))}


def test_no_position_for_longer_than_the_threshold_says_since_when_and_where():
    race = watch()
    race.observe([athlete(600, 1500.0)])
    assert kinds(race, 899) == {}
    alert = kinds(race, 901)["no_position"]
    assert alert["since"] == "2026-05-01T09:10:00Z" and alert["distance_m"] == 1500.0
    assert alert["lat"] is not None


def test_not_moving_while_positions_keep_coming():
    race = watch()
    race.observe([athlete(0, 1000.0)])
    race.observe([athlete(200, 1010.0)])
    assert kinds(race, 200) == {}
    race.observe([athlete(320, 1015.0)])
    alert = kinds(race, 320)["not_moving"]
    assert alert["since"] == "2026-05-01T09:00:00Z"
    race.observe([athlete(330, 1100.0)])
    assert kinds(race, 330) == {}


def test_off_course_by_more_than_the_threshold():
    race = watch()
    race.observe([athlete(0, 1000.0, east_m=100.0)])
    assert kinds(race, 0) == {}
    race.observe([athlete(30, 1000.0, east_m=400.0)])
    alert = kinds(race, 40)["off_course"]
    assert "m from the course" in alert["detail"] and alert["since"] == "2026-05-01T09:00:30Z"
    race.observe([athlete(60, 1000.0)])
    assert kinds(race, 60) == {}


def test_going_backwards_along_the_course():
    race = watch()
    race.observe([athlete(0, 3000.0)])
    race.observe([athlete(60, 3000.0, lat_at=2900.0)])  # 100 m back: GPS noise
    assert "going_backwards" not in kinds(race, 60)
    race.observe([athlete(120, 3000.0, lat_at=2600.0)])
    assert "400 m back" in kinds(race, 120)["going_backwards"]["detail"]


def test_missed_checkpoint_when_no_position_came_near_it():
    race = watch()
    race.observe([athlete(0, 1900.0)])
    cp1 = {"name": "CP1", "distance_m": 2000.0, "split_s": 30.0}
    race.observe([athlete(60, 2100.0, splits=[cp1])])
    assert "missed_checkpoint" not in kinds(race, 60)
    race = watch()
    race.observe([athlete(0, 1000.0)])
    race.observe([athlete(600, 3000.0, splits=[cp1])])
    assert "CP1" in kinds(race, 600)["missed_checkpoint"]["detail"]


def test_each_episode_is_counted_once_however_many_checks_and_again_after_it_ended():
    counted: list[str] = []
    race = watch(counted)
    race.observe([athlete(0, 1000.0)])
    for second in (400, 401, 402):
        race.check(at(second))
    race.observe([athlete(403, 1500.0)])
    race.check(at(403))
    race.check(at(800))
    assert counted == ["no_position", "no_position"]


def test_finished_and_dropped_athletes_raise_no_position_alerts():
    race = watch()
    race.observe([athlete(0, 5000.0, status=wire.FINISHED)])
    race.observe([{**athlete(0, 1000.0), "id": 8, "status": wire.DNF}])
    assert race.check(at(10_000)) == []


def test_race_now_runs_at_the_race_pace_or_at_the_newest_position():
    wall = START + timedelta(seconds=10)
    assert race_now(START, wall, 60.0, None) == START + timedelta(seconds=600)
    assert race_now(START, wall, 60.0, at(900)) == at(900)
