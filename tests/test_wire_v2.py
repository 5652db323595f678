"""The compact protocol `raceweb.v2` says what v1 says: same state after every frame.

The recorded races of the conformance fixture (`tests.wire_recordings`) are encoded frame
by frame as the web hub encodes them (each update against the state at the frame before)
and decoded by `races.wire_v2` (the Python mirror of `static/js/wire-v2.js`) and by
wire-v2.js itself in Chromium; merged, they must equal the v1 state after every frame.
"""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest

from races import wire, wire_v2
from tests.browser_support import run_module_page
from tests.test_wire_conformance import runs
from tests.wire_recordings import FIXTURE, recorded


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def canonical(message: dict) -> dict:
    return json.loads(wire.dumps(message))


def test_every_recorded_frame_decodes_to_the_v1_state(committed):
    frames = 0
    for name, run in runs(committed):
        snapshots = {snapshot["frame"]: snapshot for snapshot in run["snapshots"]}
        first = run["snapshots"][0]
        v1 = {a["id"]: a for a in copy.deepcopy(first["athletes"])}
        v1_race = copy.deepcopy(first["race"])
        decoded = wire_v2.decode_snapshot(wire_v2.encode_snapshot(first))
        v2 = {a["id"]: a for a in decoded["athletes"]}
        v2_race = decoded["race"]
        for update in run["updates"]:
            compact = wire_v2.encode_update(v1, update)  # the hub: before it merges
            wire.merge_update(v1, v1_race, copy.deepcopy(update))
            wire.merge_update(v2, v2_race, wire_v2.decode_update(compact, v2))
            assert (v2, v2_race) == (v1, v1_race), f"{name}: frame {update['frame']}"
            frames += 1
            if update["frame"] in snapshots:
                snapshot = snapshots[update["frame"]]
                again = wire_v2.decode_snapshot(wire_v2.encode_snapshot(snapshot))
                assert canonical(again) == snapshot, f"{name}: snapshot {update['frame']}"
    assert frames >= 120


def test_the_relays_v2_frames_decode_to_the_v1_state_after_every_recorded_frame():
    """The relay encodes each update once, against its own published forms (whose split
    lists grow in place): a v2 receiver must hold what a v1 receiver holds after every
    frame, through splits, DNFs, snapped trackers, redeliveries and a reset."""
    frames = 0
    for recorder in recorded():
        for run, compact_frames in zip(recorder.runs, recorder.compact_runs, strict=True):
            first = run["snapshots"][0]
            v1 = {a["id"]: a for a in copy.deepcopy(first["athletes"])}
            decoded = wire_v2.decode_snapshot(wire_v2.encode_snapshot(first))
            v2 = {a["id"]: a for a in decoded["athletes"]}
            for update, compact in zip(run["updates"], compact_frames, strict=True):
                wire.merge_update(v1, {}, copy.deepcopy(update))
                wire.merge_update(v2, {}, wire_v2.decode_update(compact, v2))
                assert v2 == v1, f"{recorder.name}: frame {update['frame']}"
                frames += 1
    assert frames >= 120


def test_the_times_of_every_recorded_frame_read_alone_match_the_full_decode(committed):
    """The benchmark's spectators read only the event times of each frame: they must count
    the same positions at the same times as a full decode and merge."""
    for name, run in runs(committed):
        first = run["snapshots"][0]
        v1 = {a["id"]: a for a in copy.deepcopy(first["athletes"])}
        held = {a["id"]: wire_v2.codec.time_ms(a.get("time")) for a in first["athletes"]}
        for update in run["updates"]:
            compact = wire_v2.encode_update(v1, update)
            wire.merge_update(v1, {}, copy.deepcopy(update))
            stamps = [a["time"] for a in update["athletes"] if a.get("time")]
            expected = Counter(wire_v2.codec.time_ms(stamp) for stamp in stamps)
            assert wire_v2.update_times(compact, held) == expected, f"{name}: {update['frame']}"
        assert held == {i: wire_v2.codec.time_ms(a.get("time")) for i, a in v1.items()}, name


def test_v2_carries_no_static_fields_in_updates_and_far_fewer_bytes(committed):
    v1_bytes = v2_bytes = deflated_bytes = 0
    for _, run in runs(committed):
        held = {a["id"]: a for a in copy.deepcopy(run["snapshots"][0]["athletes"])}
        race = {}
        for update in run["updates"]:
            compact = wire_v2.encode_update(held, update, deflate=False)
            deflated_bytes += len(wire_v2.pack(compact))
            assert b"Lovelace" not in compact and b'"bib"' not in compact
            if all(held[a["id"]]["lat"] is not None for a in update["athletes"]):
                assert b'"lat"' not in compact  # a position is JSON only when it first appears
            v1_bytes += len(wire.dumps(update).encode())
            v2_bytes += len(compact)
            wire.merge_update(held, race, copy.deepcopy(update))
    assert (
        v2_bytes * 2.5 < v1_bytes and deflated_bytes < v2_bytes
    )  # 8 athletes, 4-minute ticks; 1,000 at 1 Hz: bench


def test_the_offline_byte_benchmark_measures_both_protocols():
    from bench import wire_bytes

    result = wire_bytes.measure(athletes=30, seconds=5, at=120, fps=4)
    (_, v1, _, v1_snapshot), (_, v2, _, v2_snapshot), _ = result["rows"]
    assert result["positions"] >= 30 * 5 and 0 < v2 * 4 < v1 and v2_snapshot * 4 < v1_snapshot
    assert "| raceweb.v2 (deflated) |" in wire_bytes.table(result)


def athlete(**fields) -> dict:
    return wire.public_athlete(id=7, bib="7", name="Zoë", gender="female", category="W30") | fields


@pytest.mark.parametrize(
    "change",
    [
        {"lat": 48.1234567},  # finer than the map's precision: sent as JSON, kept exactly
        {"lat": None, "lon": None},  # a fix lost
        {"time": "2026-05-01T09:00:05.250+00:00"},  # not written the v1 way
        {"time": "2026-05-01T09:00:05.250Z", "status": "finished", "note": "photo finish"},
        {
            "rank": 3,
            "rank_category": None,
            "splits": [{"name": "CP1", "distance_m": 3000.0, "split_s": 901.5}],
        },
    ],
)
def test_irregular_values_go_as_json_extras_and_come_back_exactly(change):
    before = athlete(lat=48.1, lon=16.2, distance_m=10.5, time="2026-05-01T09:00:01Z", rank=4)
    held = {7: copy.deepcopy(before)}
    update = wire.update_message(3, 12.3456, [{"id": 7, **change}, athlete(id=9)])
    decoded = wire_v2.decode_update(wire_v2.encode_update(held, update), held)
    v1, v2 = {7: copy.deepcopy(before)}, held
    v1_race, v2_race = {}, {}
    wire.merge_update(v1, v1_race, copy.deepcopy(update))
    wire.merge_update(v2, v2_race, decoded)
    assert (v2, v2_race) == (v1, v1_race)
    snapshot = wire.snapshot_message(3, {"clock_s": None}, None, v1.values())
    assert canonical(wire_v2.decode_snapshot(wire_v2.encode_snapshot(snapshot))) == canonical(
        snapshot
    )


def test_an_update_that_does_not_fit_the_held_state_is_refused():
    held = {7: athlete(distance_m=10.0)}
    compact = wire_v2.encode_update(
        held, wire.update_message(1, 1.0, [{"id": 7, "distance_m": 12.0}])
    )
    with pytest.raises(wire_v2.DecodeError):
        wire_v2.decode_update(compact, {})
    with pytest.raises(wire_v2.DecodeError):
        wire_v2.decode_update(compact[:-1], held)


PAGE = """<!doctype html><script type="importmap">{"imports": {"raceweb/": "/static/js/"}}</script>
<script type="module">
import { RaceState } from "raceweb/state.js";
import { decodeSnapshot, decodeUpdate, unpack } from "raceweb/wire-v2.js";
const canonical = (value) => JSON.stringify(value, (key, v) =>
  v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v);
const bytes = (hex) => Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
const recording = await (await fetch("/v2.json")).json();
const failures = [];
let checked = 0;
for (const run of recording) {
  const v1 = new RaceState();
  const v2 = new RaceState();
  v1.applySnapshot(structuredClone(run.snapshot));
  v2.applySnapshot(decodeSnapshot(await unpack(bytes(run.snapshot_v2))));
  for (const [i, update] of run.updates.entries()) {
    v1.applyUpdate(structuredClone(update));
    v2.applyUpdate(decodeUpdate(await unpack(bytes(run.updates_v2[i])), v2.athletes));
    const state = (s) => canonical({ frame: s.frame, clock_s: s.race.clock_s,
      athletes: [...s.athletes.values()].sort((a, b) => a.id - b.id) });
    if (state(v1) !== state(v2)) failures.push(update.frame);
    checked += 1;
  }
}
window.conformance = { checked, failures };
</script>"""


def encoded_runs(recording: dict) -> list[dict]:
    encoded = []
    for _, run in runs(recording):
        first = run["snapshots"][0]
        held = {a["id"]: a for a in copy.deepcopy(first["athletes"])}
        race = copy.deepcopy(first["race"])
        updates_v2 = []
        for update in run["updates"]:
            updates_v2.append(wire_v2.encode_update(held, update).hex())
            wire.merge_update(held, race, copy.deepcopy(update))
        encoded.append(
            {
                "snapshot": first,
                "snapshot_v2": wire_v2.encode_snapshot(first).hex(),
                "updates": run["updates"],
                "updates_v2": updates_v2,
            }
        )
    return encoded


@pytest.mark.browser
def test_wire_v2_js_decodes_every_recorded_frame_to_the_v1_state(committed):
    encoded = {"/v2.json": json.dumps(encoded_runs(committed))}
    result = run_module_page(PAGE, encoded, "conformance")
    assert result["failures"] == []
    assert result["checked"] == sum(len(run["updates"]) for _, run in runs(committed))
