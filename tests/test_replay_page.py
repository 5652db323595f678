"""Replay and results in real Chromium, over a simulated race run to the end.

The page's HTTP (page, course, history API) is the live Django server; its socket is
answered by the test with the race's real stored snapshot (Playwright WebSocket routing).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from harness.waiting import wait_until as poll_until
from races.spectators import snapshots
from tests.browser_support import DESKTOP, PHONE, block_tiles, chromium, screenshot
from tests.factories import started_race
from tests.history_support import run_to_the_end

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_until(page, condition, what: str, deadline: float = 15):
    return poll_until(condition, deadline, what, pause=lambda s: page.wait_for_timeout(s * 1000))


def board_bibs(page, count: int = 5) -> list[str]:
    return page.eval_on_selector_all(
        "#board-body .board-row",
        f"""rows => rows.sort((a, b) => a.ariaRowIndex - b.ariaRowIndex)
                      .map(r => r.children[1].textContent).slice(0, {count})""",
    )


def run_in_thread(race) -> None:
    try:
        run_to_the_end(race)
    finally:
        connection.close()


@pytest.fixture
def finished_race():
    race = started_race(athletes=25, tick_seconds=120.0)
    # Playwright's loop runs in this thread (module-scoped browser): the relay runs in another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(run_in_thread, race).result()
    race.refresh_from_db()
    return race


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_page(browser, live_server, finished_race):
    snapshot = json.dumps(snapshots.read_snapshot(finished_race.slug))
    pages = []

    def open_(hash: str = "", viewport=DESKTOP):
        page = browser.new_page(viewport=viewport)
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        block_tiles(page)
        page.route_web_socket("**/ws/races/**", lambda ws: ws.send(snapshot))
        page.goto(live_server.url + finished_race.get_absolute_url() + hash)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        assert page.errors == [], page.errors
        page.close()


def test_replay_drag_play_follow_and_back_to_live(open_page, finished_race, client):
    page = open_page()
    wait_until(page, lambda: page.evaluate("raceweb.state.race?.status") == "finished", "live")
    final = board_bibs(page)
    page.click('[data-replay="open"]')
    slider = page.locator('[data-replay="slider"]')
    box = slider.bounding_box()
    end = float(slider.get_attribute("max"))
    # Drag the thumb to the middle of the race.
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    wait_until(page, lambda: page.evaluate("raceweb.replay.fetched") >= 1, "an instant shown")
    page.wait_for_timeout(300)
    t = page.evaluate("raceweb.replay.t")
    assert 0.35 * end < t < 0.65 * end
    expected = client.get(f"/api/races/{finished_race.slug}/leaderboard", {"at": f"{t:.1f}"})
    expected_bibs = [a["bib"] for a in expected.json()["athletes"]][:5]
    wait_until(page, lambda: board_bibs(page) == expected_bibs, "the board of that instant")
    assert page.text_content("#race-status") == "Replay"
    assert f"t={round(t)}" in page.evaluate("location.hash")
    screenshot(page, "replay-middle.png")

    page.select_option('[data-replay="speed"]', "100")
    page.click('[data-replay="play"]')
    wait_until(page, lambda: page.evaluate("raceweb.replay.t") > t + 300, "playing at 100x")
    shown = page.evaluate("raceweb.replay.fetched")
    wait_until(page, lambda: page.evaluate("raceweb.replay.fetched") > shown + 3, "frames flow")
    page.click('[data-replay="play"]')  # pause

    page.locator("#board-body .board-row").nth(1).click()
    followed = page.evaluate("raceweb.state.athletes.get(raceweb.replay.followed())?.bib")
    assert followed
    assert not page.locator("#follow").is_hidden()
    assert f"bib={followed}" in page.evaluate("location.hash")
    page.focus('[data-replay="jump"]')
    labels = page.locator('[data-replay="jump"] option').all_text_contents()
    assert any("First finish" in label for label in labels)
    screenshot(page, "replay-follow.png")

    page.click('[data-replay="live"]')
    wait_until(page, lambda: page.evaluate("raceweb.state.race?.status") == "finished", "live")
    assert not page.evaluate("raceweb.replay.active")
    wait_until(page, lambda: board_bibs(page) == final, "the final board again")
    assert "t=" not in page.evaluate("location.hash")


def test_a_replay_link_opens_at_its_time_on_a_phone(open_page):
    page = open_page("#t=1800&bib=3", viewport=PHONE)
    wait_until(page, lambda: page.evaluate("raceweb.replay.fetched") >= 1, "the linked instant")
    assert page.evaluate("raceweb.replay.t") == 1800
    assert page.text_content('[data-replay="time"]') == "0:30:00"
    wait_until(page, lambda: "bib=3" in page.evaluate("location.hash"), "the followed athlete")
    screenshot(page, "replay-phone.png")


def test_the_results_page(open_page, finished_race, live_server):
    page = open_page()
    page.goto(live_server.url + f"/races/{finished_race.slug}/results/")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 25
    assert rows.nth(0).locator("td").first.text_content() == "1"
    screenshot(page, "results.png")
    with page.expect_navigation():
        page.select_option('select[name="gender"]', "female")
    genders = page.eval_on_selector_all("#results tbody tr", "rs => rs.map(r => r.dataset.gender)")
    assert genders and set(genders) == {"female"} and len(genders) < 25
    assert page.locator("#results tbody tr").nth(0).locator("td").nth(1).text_content() == "1"
    screenshot(page, "results-women.png")


def test_the_analysis_page(open_page, finished_race, live_server):
    page = open_page()
    second = finished_race.live_athletes.get(state__rank=2).state["bib"]
    page.goto(live_server.url + f"/races/{finished_race.slug}/results/")
    with page.expect_navigation():
        page.locator(f'#results tr[data-bib="{second}"] a', has_text="Analysis").click()
    assert page.locator("#chart-gained rect").count() == 3  # two checkpoints and the finish
    assert page.locator("#chart-distance polyline").count() == 2
    screenshot(page, "analysis.png")
