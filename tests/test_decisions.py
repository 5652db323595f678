"""Race control's decisions: DNS, DNF, corrected finish time and undo, applied by the
relay's race state (pure) and end to end in-process (record → embedded relay → frame)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.test import Client

from harness.waiting import async_wait_until
from races import wire, wire_decisions
from races.models import AthleteDecision, LiveAthlete, Race
from races.organizer import decisions, lifecycle
from races.relay import embedded
from races.relay.events import InvalidEvent
from races.relay.race_state import RaceState
from races.wire import DNF, DNS, FINISHED, NOT_STARTED, RUNNING
from tests.factories import EventFeed, started_race
from tests.test_race_state import simulated_state


def decision(athlete: int, kind: str, id: int = 1, **fields) -> dict:
    return wire_decisions.decision_message(
        slug="x", athlete_id=athlete, id=id, kind=kind, by="ana", **fields
    )


def started(state: RaceState, feed) -> None:
    for athlete in (1, 2, 3, 4):
        feed.send(athlete, 0, "start", distance_m=0.0)
    feed.send(1, 300, distance_m=1500.0)
    feed.send(2, 300, distance_m=1200.0)
    feed.send(3, 300, distance_m=900.0)


def by_id(state: RaceState) -> dict[int, dict]:
    return {a["id"]: a for a in state.leaderboard()}


def test_dnf_drops_a_runner_out_of_the_ranking_with_the_reason_and_undo_brings_them_back():
    state, feed = simulated_state()
    started(state, feed)
    state.take_changes()
    state.apply_decision(decision(1, "dnf", reason="knee, retired at CP1"))
    athletes = by_id(state)
    assert athletes[1]["status"] == DNF and athletes[1]["rank"] is None
    assert athletes[1]["decision"]["reason"] == "knee, retired at CP1"
    assert athletes[2]["rank"] == 1
    changes = {a["id"]: a for a in state.take_changes().wire}
    assert changes[1]["status"] == DNF and changes[2]["rank"] == 1
    feed.send(1, 400, distance_m=2000.0)  # the tracker keeps sending: nothing changes
    assert by_id(state)[1]["distance_m"] == 1500.0
    state.apply_decision(decision(1, "undo", id=2))
    athletes = by_id(state)
    assert (athletes[1]["status"], athletes[1]["rank"], athletes[1]["decision"]) == (
        RUNNING, 1, None,
    )  # fmt: skip


def test_dns_puts_a_not_started_athlete_last_and_the_race_can_finish_without_them():
    state, feed = simulated_state()
    for athlete in (1, 2, 3):
        feed.send(athlete, 0, "start", distance_m=0.0)
        feed.send(athlete, 900 + athlete, "finish", distance_m=3000.0)
    assert not state.everyone_done
    state.apply_decision(decision(4, "dns", reason="no show"))
    board = state.leaderboard()
    assert [(a["id"], a["status"]) for a in board][-1] == (4, DNS)
    assert wire.leaderboard_sort_key(board[-1]) > wire.leaderboard_sort_key(board[-2])
    assert state.everyone_done
    state.apply_decision(decision(4, "undo", id=2))
    assert by_id(state)[4]["status"] == NOT_STARTED and not state.everyone_done


def test_a_corrected_finish_time_reranks_the_finishers_and_undo_restores_the_timed_one():
    state, feed = simulated_state()
    for athlete in (1, 2):
        feed.send(athlete, 0, "start", distance_m=0.0)
    feed.send(1, 900, "finish", distance_m=3000.0)
    feed.send(2, 950, "finish", distance_m=3000.0)
    state.apply_decision(decision(2, "finish_time", finish_s=880.0, reason="mat missed"))
    athletes = by_id(state)
    assert (athletes[2]["rank"], athletes[2]["splits"][-1]["split_s"]) == (1, 880.0)
    assert athletes[1]["gap_s"] == 20.0
    state.apply_decision(decision(2, "undo", id=2))
    athletes = by_id(state)
    assert (athletes[1]["rank"], athletes[2]["splits"][-1]["split_s"]) == (1, 950.0)


def test_spectators_holding_the_last_frame_see_the_corrected_finish_time_and_its_undo():
    """The update of a correction must carry everything that changed, `last_checkpoint`
    too: a spectator's state after it equals the stored snapshot's (it kept the timed
    split as the last checkpoint while the splits said otherwise)."""
    state, feed = simulated_state()
    for athlete in (1, 2):
        feed.send(athlete, 0, "start", distance_m=0.0)
        feed.send(athlete, 900 + athlete, "finish", distance_m=3000.0)
    state.take_changes()  # the frame the spectators hold, and its snapshot:
    held = {a["id"]: json.loads(wire.dumps(a)) for a in state.leaderboard()}
    for message in (
        decision(2, "finish_time", finish_s=880.0, reason="mat missed"),
        decision(2, "undo", id=2),
    ):
        state.apply_decision(message)
        wire.merge_update(held, {}, json.loads(wire.dumps({"athletes": state.take_changes().wire})))
        assert held == {a["id"]: json.loads(wire.dumps(a)) for a in state.leaderboard()}
    assert held[2]["last_checkpoint"]["split_s"] == 902.0


def test_a_finish_time_for_a_runner_the_timing_missed_finishes_them():
    state, feed = simulated_state()
    started(state, feed)
    state.apply_decision(decision(3, "finish_time", finish_s=1000.0))
    athlete = by_id(state)[3]
    assert (athlete["status"], athlete["distance_m"], athlete["rank"]) == (FINISHED, 3000.0, 1)
    state.apply_decision(decision(3, "undo", id=2))
    athlete = by_id(state)[3]
    assert (athlete["status"], athlete["distance_m"]) == (RUNNING, 900.0)
    assert [s["name"] for s in athlete["splits"]] == []


def test_applying_a_decision_twice_is_the_same_as_once():
    state, feed = simulated_state()
    started(state, feed)
    state.apply_decision(decision(1, "dnf", reason="r"))
    once = by_id(state)
    state.apply_decision(decision(1, "dnf", reason="r"))
    state.apply_decision(decision(1, "finish_time", id=2, finish_s=999.0))
    state.apply_decision(decision(1, "dnf", id=3, reason="r"))
    assert by_id(state)[1]["status"] == once[1]["status"] == DNF
    assert by_id(state)[1]["distance_m"] == once[1]["distance_m"]


def test_a_decision_survives_a_relay_restart_and_can_still_be_undone():
    state, feed = simulated_state()
    started(state, feed)
    state.apply_decision(decision(1, "dnf", reason="r"))
    stored = state.leaderboard()
    restarted, _ = simulated_state()
    for public in stored:
        restarted.restore(json.loads(json.dumps(public)), 5)
    assert by_id(restarted)[1]["status"] == DNF
    restarted.apply_decision(decision(1, "undo", id=2))
    assert by_id(restarted)[1]["status"] == RUNNING and by_id(restarted)[1]["rank"] == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "disqualify"}, "unknown decision"),
        ({"athlete_id": 99}, "not on the start list"),
        ({"kind": "finish_time", "finish_s": -1}, "finish_s > 0"),
        ({"kind": "finish_time", "finish_s": None}, "finish_s > 0"),
    ],
)
def test_a_bad_decision_is_refused_with_the_reason(change, reason):
    state, feed = simulated_state()
    started(state, feed)
    with pytest.raises(InvalidEvent, match=reason):
        state.apply_decision({**decision(1, "dnf"), **change})


# ---- the organizer's side ------------------------------------------------------------------


@pytest.mark.django_db
def test_decisions_are_refused_with_a_reason_before_the_start_and_without_what_they_need():
    race = started_race(athletes=2)
    athlete = race.athletes.first()
    with pytest.raises(decisions.DecisionRefused, match="needs a reason"):
        decisions.decide(race, athlete, "dnf", by="ana")
    with pytest.raises(decisions.DecisionRefused, match="H:MM:SS"):
        decisions.decide(race, athlete, "finish_time", by="ana", finish_s=None)
    with pytest.raises(decisions.DecisionRefused, match="no decision to undo"):
        decisions.undo(race, athlete, by="ana")
    lifecycle.stop_race(race)
    lifecycle.reset_race(race)
    race.refresh_from_db()
    with pytest.raises(decisions.DecisionRefused, match="once it has started"):
        decisions.decide(race, athlete, "dns", by="ana")
    assert not AthleteDecision.objects.filter(race=race).exists()
    assert decisions.parse_race_time("1:02:03") == 3723.0


# ---- end to end in one process: record → relay → stored frame → API ---------------------


@pytest.fixture
def fresh_layer():
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
    embedded.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_decision_reaches_the_next_frame_the_store_and_the_api_also_after_the_finish(
    fresh_layer, settings
):
    race = await sync_to_async(started_race)(athletes=2)
    feed = await sync_to_async(EventFeed)(race)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(race.group_name, channel)
    core = embedded.start()
    first, second = feed.athletes
    core.ingest(race.slug, feed.starts() + feed.tick(60))

    async def frame_with(athlete_id: int, key: str) -> dict:
        while True:
            message = await asyncio.wait_for(layer.receive(channel), 5.0)
            if message["type"] != "race.frame":
                continue
            for athlete in json.loads(message["text"])["athletes"]:
                if athlete["id"] == athlete_id and key in athlete:
                    return athlete

    await frame_with(first.pk, "distance_m")
    await sync_to_async(decisions.decide)(race, first, "dnf", by="ana", reason="fell at CP1")
    changed = await frame_with(first.pk, "decision")
    assert changed["status"] == DNF and changed["decision"]["reason"] == "fell at CP1"
    assert "by" not in changed["decision"]  # who decided is for race control, not the public
    api = await sync_to_async(Client().get)(f"/api/races/{race.slug}/leaderboard")
    statuses = {a["id"]: a["status"] for a in api.json()["athletes"]}
    assert statuses[first.pk] == DNF

    # A results correction after the finish: the relay still applies and stores it.
    core.ingest(race.slug, [feed.event(second, 600, feed.length_m, "finish")])
    await frame_with(second.pk, "status")

    async def finished() -> bool:  # one finished, one DNF: the relay finishes the race
        status = await sync_to_async(lambda: Race.objects.get(pk=race.pk).status)()
        return status == Race.Status.FINISHED

    await async_wait_until(finished, 10, "the relay to finish the race")
    await sync_to_async(decisions.undo)(race, first, by="ana", reason="he walked in")
    assert (await frame_with(first.pk, "decision"))["decision"] is None
    live = await sync_to_async(LiveAthlete.objects.get)(athlete=first)
    assert live.state["status"] == RUNNING


@pytest.mark.django_db
def test_a_decision_no_relay_heard_is_applied_when_a_relay_loads_the_race(monkeypatch):
    from races.relay import live_store

    race = started_race(athletes=2)
    athlete = race.athletes.first()
    monkeypatch.setattr(lifecycle, "on_decided", [])  # as if no relay was listening
    decisions.decide(race, athlete, "dns", by="ana", reason="no show")
    loaded = live_store.load_race(race.slug)
    assert loaded.state.decision_of(athlete.pk)["kind"] == "dns"
    assert {a["id"]: a["status"] for a in loaded.state.take_changes().full}[athlete.pk] == DNS
    decisions.undo(race, athlete, by="ana")
    assert live_store.load_race(race.slug).state.decision_of(athlete.pk) is None
