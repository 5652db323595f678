"""Conformance, Zulip style: snapshot(N) with updates N+1..N+k merged equals snapshot(N+k).

The recorded races (`tests.wire_recordings`: a loop course to the end with DNFs, the same
course tracked without distances, a reset mid-race) hold the snapshots a spectator would
get and every update in between. Merged with `races.wire.merge_update` (the hub's merge),
any earlier snapshot plus the updates since must give every later snapshot exactly: the
frame, the race's clock and every field of every athlete, in leaderboard order. The same
fixture file is checked against `static/js/state.js` in Chromium.
"""

from __future__ import annotations

import copy
import itertools
import json

import pytest

from races import wire
from tests.browser_support import run_module_page
from tests.wire_recordings import FIXTURE, record


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def runs(recording: dict):
    for race in recording["races"]:
        for number, run in enumerate(race["runs"], 1):
            yield f"{race['name']} (run {number})", run


def merged(start: dict, updates: list[dict]) -> dict:
    """What a receiver holds after `start` and `updates`, as a snapshot."""
    race = copy.deepcopy(start["race"])
    athletes = {athlete["id"]: athlete for athlete in copy.deepcopy(start["athletes"])}
    frame = start["frame"]
    for update in copy.deepcopy(updates):
        assert update["frame"] == frame + 1, "updates are numbered consecutively"
        wire.merge_update(athletes, race, update)
        frame = update["frame"]
    snapshot = wire.snapshot_message(frame, race, start["course"], athletes.values())
    return json.loads(wire.dumps(snapshot))


def assert_conforms(recording: dict) -> int:
    checked = 0
    for name, run in runs(recording):
        updates = {update["frame"]: update for update in run["updates"]}
        for start, end in itertools.combinations(run["snapshots"], 2):
            between = [updates[n] for n in range(start["frame"] + 1, end["frame"] + 1)]
            assert merged(start, between) == end, f"{name}: {start['frame']} -> {end['frame']}"
            checked += 1
    return checked


def test_committed_recordings_merge_to_every_later_snapshot(committed):
    assert assert_conforms(committed) >= 60


def test_a_fresh_recording_of_the_current_code_conforms_too():
    assert_conforms(record())


def test_the_recordings_exercise_what_the_merge_must_get_right(committed):
    """Not a vacuous equality: partial updates, splits left out, every status, a reset."""
    statuses, partial, without_splits, resets = set(), 0, 0, 0
    for race in committed["races"]:
        resets += len(race["runs"]) - 1
        for run in race["runs"]:
            for snapshot in run["snapshots"]:
                statuses |= {athlete["status"] for athlete in snapshot["athletes"]}
            for update in run["updates"]:
                for athlete in update["athletes"]:
                    partial += len(athlete) < len(run["snapshots"][0]["athletes"][0])
                    without_splits += "splits" not in athlete
    assert statuses == {wire.NOT_STARTED, wire.RUNNING, wire.FINISHED, wire.DNF}
    assert partial > 100 and without_splits > 100 and resets >= 1


def test_a_wrong_merge_is_caught(committed):
    """Dropping one changed field of the last update makes the snapshot differ."""
    _, run = next(runs(committed))
    start, end = run["snapshots"][0], run["snapshots"][-1]
    between = copy.deepcopy(run["updates"][: end["frame"]])
    moved = next(a for u in reversed(between) for a in u["athletes"] if "distance_m" in a)
    del moved["distance_m"]
    assert merged(start, between) != end


PAGE = """<!doctype html><script type="importmap">{"imports": {"raceweb/": "/static/js/"}}</script>
<script type="module">
import { RaceState } from "raceweb/state.js";
import { boardOrder } from "raceweb/board.js";
const canonical = (value) => JSON.stringify(value, (key, v) =>
  v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v);
const fixture = await (await fetch("/fixture.json")).json();
const failures = [];
let checked = 0;
for (const race of fixture.races) {
  for (const run of race.runs) {
    const updates = new Map(run.updates.map((u) => [u.frame, u]));
    for (let i = 0; i < run.snapshots.length; i++) {
      for (let j = i + 1; j < run.snapshots.length; j++) {
        const [start, end] = [run.snapshots[i], run.snapshots[j]];
        const state = new RaceState();
        state.applySnapshot(structuredClone(start));
        for (let n = start.frame + 1; n <= end.frame; n++) {
          state.applyUpdate(structuredClone(updates.get(n)));
        }
        const got = { frame: state.frame, clock_s: state.race.clock_s,
                      athletes: [...state.athletes.values()].sort(boardOrder) };
        const want = { frame: end.frame, clock_s: end.race.clock_s, athletes: end.athletes };
        const pair = `${race.name}: ${start.frame}->${end.frame}`;
        if (canonical(got) !== canonical(want)) failures.push(pair);
        checked += 1;
      }
    }
  }
}
window.conformance = { checked, failures };
</script>"""


@pytest.mark.browser
def test_state_js_merges_the_same_fixture_to_the_same_snapshots(committed):
    fixture = {"/fixture.json": FIXTURE.read_text()}
    result = run_module_page(PAGE, fixture, "conformance")
    assert result["failures"] == []
    assert result["checked"] == assert_conforms(committed)
