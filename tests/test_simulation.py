"""Whole-race simulation: determinism, direct equals stepping, the event contract."""

import itertools
import math
from collections import defaultdict
from datetime import datetime

import numpy as np
import pytest

from tests.simulation_builders import START, simulation

CONTRACT_FIELDS = {
    "athlete", "gender", "race", "location", "elevation", "time", "event",
    "bib", "athlete_id", "seq", "distance_m", "speed_mps",
}  # fmt: skip


@pytest.fixture(scope="module")
def race():
    return simulation(count=40, seed=11)


@pytest.fixture(scope="module")
def stepped(race):
    """Every event of the race, published one tick at a time."""
    events = []
    for tick in range(-1, race.last_tick):
        events += race.events(tick, tick + 1)
    return events


def by_athlete(events):
    grouped = defaultdict(list)
    for event in events:
        grouped[event["athlete_id"]].append(event)
    return grouped


def test_same_seed_same_race_other_seed_other_race(race):
    again = simulation(count=40, seed=11)
    other = simulation(count=40, seed=12)
    for tick in (0, 5, 60, 200):
        assert again.events(tick - 1, tick) == race.events(tick - 1, tick)
    assert other.events(59, 60) != race.events(59, 60)


def test_direct_time_equals_stepping(race, stepped):
    running = {(e["seq"]): e for e in stepped if e["event"] == "running"}
    for tick in (1, 17, 100, race.last_tick // 2, race.last_tick - 1):
        direct = [e for e in race.events(tick - 1, tick) if e["event"] == "running"]
        assert direct and all(running[e["seq"]] == e for e in direct)
        distance, _ = race.timeline.state_at(tick * race.tick_seconds)
        for e in direct:
            assert e["distance_m"] == pytest.approx(distance[e["athlete_id"] - 1], abs=0.01)


def test_catching_up_in_one_step_publishes_the_same_milestones(race, stepped):
    milestones = [e for e in stepped if e["event"] != "running"]
    caught_up = race.events(-1, race.last_tick)
    assert [e for e in caught_up if e["event"] != "running"] == milestones
    resumed = race.events(-1, 50) + race.events(50, race.last_tick)
    assert [e for e in resumed if e["event"] != "running"] == milestones


def test_seq_is_unique_and_grows_in_publication_order(stepped):
    seqs = [e["seq"] for e in stepped]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_every_athlete_starts_then_moves_forward_and_ends_once(race, stepped):
    length = race.course.length_m
    ends = {"finish": 0, "dnf": 0}
    for athlete_events in by_athlete(stepped).values():
        kinds = [e["event"] for e in athlete_events]
        assert kinds[0] == "start" and kinds.count("start") == 1
        assert kinds[-1] in ("finish", "dnf")
        assert kinds.count("finish") + kinds.count("dnf") == 1
        distances = [e["distance_m"] for e in athlete_events]
        assert all(b >= a for a, b in itertools.pairwise(distances))
        ends[kinds[-1]] += 1
        if kinds[-1] == "finish":
            assert distances[-1] == length  # exactly, not approximately
        else:
            assert distances[-1] < length
    assert ends["finish"] >= 35


def test_each_checkpoint_passed_once_with_its_split(race, stepped):
    names = [c.name for c in race.checkpoints]
    assert len(names) == 2  # VTR Classic, 14 km: 5 km and 10 km
    for athlete_events in by_athlete(stepped).values():
        passed = [e for e in athlete_events if e["event"] == "checkpoint"]
        if athlete_events[-1]["event"] == "finish":
            assert [e["checkpoint"] for e in passed] == names
        assert len({e["checkpoint"] for e in passed}) == len(passed)
        for e in passed:
            elapsed = (datetime.fromisoformat(e["time"]) - START).total_seconds()
            assert e["split_s"] == pytest.approx(elapsed, abs=0.06)


def test_finish_times_are_spread_like_a_real_field(race):
    hours = race.timeline.finish_s[~np.isfinite(race.timeline.dnf_s)] / 3600
    # 14 km with 580 m of climbing: the fast finish in about an hour, the slow in ~3 h.
    assert 0.8 < hours.min() < 1.6 and 1.8 < hours.max() < 4.5


def test_events_follow_the_contract(race, stepped):
    kinds = set()
    for e in stepped:
        kinds.add(e["event"])
        assert CONTRACT_FIELDS <= set(e)
        assert e["race"] == "race-test-race"
        assert e["time"].endswith("Z") and datetime.fromisoformat(e["time"]) >= START
        assert set(e["location"]) == {"latitude", "longitude"}
        numbers = [*e["location"].values(), e["elevation"], e["distance_m"], e["speed_mps"]]
        assert all(isinstance(x, float) and math.isfinite(x) for x in numbers)
        assert isinstance(e["seq"], int) and isinstance(e["athlete_id"], int)
        assert isinstance(e["bib"], str) and e["gender"] in ("female", "male")
        assert 0 <= e["speed_mps"] < 10
        if e["event"] in ("checkpoint", "finish"):
            assert isinstance(e["checkpoint"], str) and e["split_s"] > 0
        else:
            assert "checkpoint" not in e
    assert {"start", "running", "checkpoint", "finish"} <= kinds


def test_running_every_tick_while_on_course(race, stepped):
    per_tick = defaultdict(set)
    for e in stepped:
        if e["event"] == "running":
            per_tick[e["time"]].add(e["athlete_id"])
    tick = 100
    moment = race.started_at.timestamp() + tick * race.tick_seconds
    on_course = {
        i + 1 for i, end in enumerate(race.timeline.end_s) if end > tick * race.tick_seconds
    }
    key = next(t for t in per_tick if datetime.fromisoformat(t).timestamp() == moment)
    assert per_tick[key] == on_course


def test_nothing_after_the_last_tick(race):
    assert race.events(race.last_tick, race.last_tick + 10) == []
    assert race.events(race.last_tick - 1, race.last_tick + 10) != []
