"""Race state and leaderboard: ranks, gaps, splits, status, duplicates, frames."""

import pytest

from races.relay.athlete_state import CheckpointSpec
from races.relay.events import InvalidEvent
from races.relay.race_state import RaceState
from races.wire import DNF, FINISHED, NOT_STARTED, RUNNING
from simulator.effort import EXPECTED_STOP_S
from tests.race_state_builders import M_PER_DEG, Feed, board, make_state, with_distances

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
    # the pace without the two checkpoint stops, over the 400 m left (flat: no profile)
    moving = 1300.0 - 2 * EXPECTED_STOP_S
    assert athlete["eta_s"] == pytest.approx(round(moving * 400.0 / 2600.0, -1))


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


def test_a_duplicate_is_dropped_and_an_overtaken_older_event_is_history():
    state, feed = simulated_state()
    event = feed.event(1, 100, distance_m=300.0)
    assert state.apply(event) is not None
    assert state.apply(dict(event)) is None
    older = state.apply(dict(event, seq=event["seq"] - 1, distance_m=200.0))
    # Stored (it may never have been), but the athlete is not moved back.
    assert older is not None and older.history and older.distance_m == 200.0
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
