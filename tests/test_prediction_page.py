"""Predicted finish and passage times with their 80 % band, and ghost pacers, in a browser.

The snapshot is the server's own: a `RaceState` built by `RaceSetup` (the relay's and the
history's one constructor) fed contract events, and the course summary the spectators'
side sends (checkpoints with their share of the course's effort). The page's socket is
scripted (as in tests/test_race_page.py), so the test decides what the page holds.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from races import wire
from races.models import Ghost
from races.organizer import lifecycle
from races.relay import prediction
from races.relay.race_setup import RaceSetup
from races.spectators.snapshots import course_effort, course_summary
from tests.browser_support import DESKTOP, block_tiles, chromium, screenshot
from tests.factories import EventFeed, make_race

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLOCK_S = 1500.0


def clock_seconds(text: str) -> int:
    h, m, s = (int(part) for part in re.findall(r"\d+", text)[:3])
    return h * 3600 + m * 60 + s


@pytest.fixture
def running_race():
    race = lifecycle.start_race(make_race("Prediction Page Race", athletes=6))
    state = RaceSetup.of(race).new_state()
    feed = EventFeed(race)
    for event in feed.starts():
        state.apply(event)
    for second in range(60, int(CLOCK_S) + 1, 60):
        for event in feed.tick(second):
            state.apply(event)
    checkpoints = list(race.checkpoints.values("name", "distance_m", "kind"))
    summary = wire.race_summary(race, state.clock_s)
    snapshot = wire.snapshot_message(
        7, summary, course_summary(race, checkpoints), state.leaderboard()
    )
    return race, json.loads(wire.dumps(snapshot))


def test_band_on_the_board_and_passages_on_the_follow_card(live_server, running_race):
    race, snapshot = running_race
    running = [a for a in snapshot["athletes"] if a["status"] == "running"]
    assert running and all(a["eta_range_s"] for a in running)
    followed = running[1]
    low, high = followed["eta_range_s"]
    assert low <= followed["eta_s"] <= high and low < high

    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        block_tiles(page)
        page.route_web_socket("**/ws/races/**", lambda ws: ws.send(json.dumps(snapshot)))
        page.goto(f"{live_server.url}{race.get_absolute_url()}#bib={followed['bib']}")
        page.wait_for_selector("#follow:not([hidden])")
        page.wait_for_function("raceweb.board.rows.size > 0")

        # The board: predicted finish on the race clock, its band as a second line.
        row = f"#board-body .board-row[data-id='{followed['id']}'] .c-finish"
        finish = followed["elapsed_s"] + followed["eta_s"]
        assert clock_seconds(page.text_content(f"{row} .t")) == int(finish)
        band = page.text_content(f"{row} .b")  # "minus 1:10 +1:20": offsets from the prediction
        earlier, later = (re.findall(r"\d+", part) for part in band.split("+"))
        assert int(earlier[0]) * 60 + int(earlier[1]) == followed["eta_s"] - low
        assert int(later[0]) * 60 + int(later[1]) == high - followed["eta_s"]
        title = page.get_attribute(row, "title")
        assert "80 %" in title

        # The follow card: the finish band drawn to scale, the prediction inside it.
        bar = page.eval_on_selector(
            "#follow .band-bar",
            """bar => {
              const r = bar.querySelector('.band-range').getBoundingClientRect();
              const t = bar.querySelector('.band-tick').getBoundingClientRect();
              return {hidden: bar.hidden, left: r.left, right: r.right, tick: t.left + t.width / 2};
            }""",
        )
        assert not bar["hidden"] and bar["left"] - 1 <= bar["tick"] <= bar["right"] + 1
        assert bar["right"] - bar["left"] > 2, "the band has a visible width"

        # Every checkpoint ahead has a predicted passage, as the relay's predictor says.
        effort = course_effort(race.course)
        ahead = [
            cp
            for cp in snapshot["course"]["checkpoints"]
            if cp["kind"] != "start" and cp["distance_m"] > followed["distance_m"]
        ]
        stops = [cp["distance_m"] for cp in snapshot["course"]["checkpoints"]
                 if cp["kind"] == "checkpoint"]  # fmt: skip
        expected = prediction.passages(
            effort,
            followed["elapsed_s"],
            followed["distance_m"],
            [cp["distance_m"] for cp in ahead],
            stops,
        )
        shown = page.eval_on_selector_all(
            "#follow tr.pending td.predicted .eta", "cells => cells.map(c => c.textContent)"
        )
        assert len(shown) == len(ahead) >= 2
        for text, (at, _, _) in zip(shown, expected, strict=True):
            # the page derives it from the rounded eta_s: within the rounding step
            assert abs(clock_seconds(text) - at) <= 2 * prediction.ETA_STEP_S, (text, at)
        times = [clock_seconds(text) for text in shown]
        assert times == sorted(times) and times[-1] <= finish + 1
        assert "at ≈" in page.text_content("#follow .follow-next")
        screenshot(page, "prediction-band-follow-card.png")
        page.locator("#follow").screenshot(path=str(screenshot_path("prediction-follow-card.png")))
        page.locator(".board").screenshot(path=str(screenshot_path("prediction-board.png")))
        assert errors == [], errors


def screenshot_path(name: str):
    from tests.browser_support import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def test_ghosts_move_with_the_race_clock_on_map_and_profile_and_are_never_ranked(
    live_server, running_race
):
    race, _ = running_race
    cp = race.checkpoints.filter(kind="checkpoint").order_by("order").first()
    Ghost.objects.create(
        race=race,
        kind=Ghost.Kind.CUTOFF,
        name="Cut-off",
        finish_time=timedelta(hours=3),
        checkpoint_times={cp.name: 3600.0},
    )
    Ghost.objects.create(race=race, kind=Ghost.Kind.RECORD, name="Record",
                         finish_time=timedelta(minutes=62))  # fmt: skip
    checkpoints = list(race.checkpoints.values("name", "distance_m", "kind"))
    snapshot = running_race[1] | {"course": course_summary(race, checkpoints)}
    snapshot["race"] = snapshot["race"] | {"time_compression": 60.0}
    names = {a["name"] for a in snapshot["athletes"]}

    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        block_tiles(page)
        page.route_web_socket("**/ws/races/**", lambda ws: ws.send(json.dumps(snapshot)))
        page.goto(f"{live_server.url}{race.get_absolute_url()}")
        page.wait_for_function("raceweb.ghosts.markers.size === 2")

        def where() -> dict:
            return page.evaluate(
                """() => Object.fromEntries(raceweb.ghosts.ghosts.map(g => {
                  const m = raceweb.ghosts.markers.get(g.id).getLatLng();
                  const d = raceweb.ghosts.distances.get(g.id);
                  const at = raceweb.ghosts.course.at(d);
                  return [g.name, {d, lat: m.lat, lon: m.lng, onCourse:
                    Math.abs(m.lat - at.lat) < 1e-9 && Math.abs(m.lng - at.lon) < 1e-9}];
                }))"""
            )

        before = where()
        page.wait_for_timeout(1500)  # 90 s of race time at 60x
        after = where()
        for name in ("Cut-off", "Record"):
            assert after[name]["onCourse"] and after[name]["d"] > before[name]["d"], name
        # the record ghost is ahead of the cut-off ghost at the same race time
        assert after["Record"]["d"] > after["Cut-off"]["d"]
        # on the profile too, as a labelled dashed line
        drawn = page.evaluate("raceweb.profile.ghosts.map(g => g.name)")
        assert sorted(drawn) == ["Cut-off", "Record"]
        # above the board, with who is ahead and behind; never a board row
        strip = page.text_content("#ghost-strip")
        assert "Cut-off" in strip and "ahead" in strip and "behind" in strip
        rows = set(page.evaluate("raceweb.board.visible.map(a => a.name)"))
        assert rows == names
        # rows of running athletes behind the cut-off ghost are marked, the others not
        page.wait_for_timeout(600)  # the strip and the marks refresh twice a second
        marked = page.evaluate(
            """() => {
              const cutoff = raceweb.ghosts.ghosts.find(g => g.kind === 'cutoff');
              const at = raceweb.ghosts.distances.get(cutoff.id);
              return [...document.querySelectorAll('#board-body .board-row')].map(r => [
                r.classList.contains('behind-cutoff'),
                raceweb.state.athletes.get(Number(r.dataset.id)).distance_m < at]);
            }"""
        )
        assert any(behind for behind, _ in marked) and all(m == e for m, e in marked), marked
        page.wait_for_timeout(300)
        screenshot(page, "ghost-pacers-race-page.png")
        page.locator(".profile-area").screenshot(path=str(screenshot_path("ghost-profile.png")))
        assert errors == [], errors
