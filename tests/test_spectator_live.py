"""The spectator pages against the real thing: `manage.py serve` (embedded mode) running a
simulated race, its relay and its sockets, in headless Chromium.

Screenshots of the running race go to test-artifacts/ (and, with UPDATE_SCREENSHOTS=1,
to docs/screenshots/ for the README).
"""

from __future__ import annotations

import os
import shutil

import pytest

from harness.processes import ROOT
from harness.served import ServedRaceWeb
from harness.waiting import wait_until as poll_until
from tests.browser_support import DESKTOP, PHONE, block_tiles, chromium, screenshot

pytestmark = pytest.mark.browser

SLUG = "live-page-race"
ATHLETES = 60
DEADLINE_S = 60  # generous: the machine may be busy, and the server simulates the race
README_SHOTS = ROOT / "docs" / "screenshots"


def wait_until(page, condition, what: str, deadline: float = DEADLINE_S):
    """Polls condition() (while Playwright keeps the page running) until it is truthy."""
    return poll_until(
        condition, deadline, what, poll_s=0.1, pause=lambda s: page.wait_for_timeout(s * 1000)
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServedRaceWeb(tmp_path_factory.mktemp("raceweb"))
    served.add_running_race(SLUG, ATHLETES, time_compression=60.0)
    served.start()
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def server_log_on_failure(server):
    """Printed output is shown for failed tests only: the server's log tail, then."""
    yield
    print(f"----- server log (tail)\n{server.log()}")


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_page(browser, server):
    pages = []

    def open_(path: str = f"/races/{SLUG}/", viewport=DESKTOP):
        page = browser.new_page(viewport=viewport)
        pages.append(page)
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        block_tiles(page)
        page.goto(server.url + path)
        return page

    yield open_
    for page in pages:
        assert page.errors == [], page.errors
        page.close()


def running_athletes(page) -> int:
    return page.evaluate(
        "[...raceweb.state.athletes.values()].filter(a => a.status === 'running').length"
    )


def board_ids(page) -> list[int]:
    """Athlete ids of the board's rows on screen, top to bottom as they are shown."""
    return page.eval_on_selector_all(
        "#board-body .board-row",
        """rows => rows.sort((a, b) => a.ariaRowIndex - b.ariaRowIndex)
                      .map(r => Number(r.dataset.id))""",
    )


def ranked_ids(page) -> list[int]:
    """The leaderboard order the server's ranks say (ranked first, then the rest by bib)."""
    return page.evaluate(
        """() => [...raceweb.state.athletes.values()]
             .sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9) || Number(a.bib) - Number(b.bib))
             .map(a => a.id)"""
    )


def test_race_page_follows_a_running_race(server, open_page):
    page = open_page()
    page.wait_for_selector("#connection[data-state='live']", timeout=DEADLINE_S * 1000)
    wait_until(page, lambda: running_athletes(page) >= ATHLETES // 2, "athletes running")

    # markers appear, one per athlete, and move
    wait_until(page, lambda: page.evaluate("raceweb.map.markers.size") == ATHLETES, "markers")
    before = page.evaluate("raceweb.map.markers.get(raceweb.board.order[0].id).getLatLng()")
    leader = page.evaluate("raceweb.board.order[0].id")
    wait_until(
        page,
        lambda: page.evaluate(f"raceweb.map.markers.get({leader}).getLatLng()") != before,
        "the leader's marker to move",
    )

    # the board follows the ranks, and reorders as they change
    first_order = board_ids(page)
    wait_until(page, lambda: board_ids(page) != first_order, "the board to reorder")
    wait_until(page, lambda: board_ids(page)[:10] == ranked_ids(page)[:10], "board in rank order")

    # the profile has a dot for every athlete
    wait_until(page, lambda: page.evaluate("raceweb.profile.dots.length") == ATHLETES, "dots")

    # search by bib, then follow from the board
    bib = page.evaluate("raceweb.board.order[2].bib")
    page.fill("#board-search", bib)
    wait_until(page, lambda: len(board_ids(page)) == 1, "search by bib")
    page.click("#board-body .board-row")
    page.wait_for_selector("#follow:not([hidden])")
    assert page.text_content("#follow .follow-bib") == bib
    followed = page.evaluate("raceweb.map.followed")
    assert page.evaluate(
        f"raceweb.map.map.getBounds().contains(raceweb.map.markers.get({followed}).getLatLng())"
    )
    assert page.evaluate("raceweb.profile.followed") == followed
    page.fill("#board-search", "")
    # for the picture: the front of the race past the first checkpoint (splits on the board)
    wait_until(
        page,
        lambda: page.evaluate("raceweb.board.order.slice(0, 3).every(a => a.last_checkpoint)"),
        "the leaders' first split",
        deadline=90,
    )
    page.click("button[title='Show the whole course']")
    followed_at = f"raceweb.map.markers.get({followed}).getLatLng()"
    assert page.evaluate(f"raceweb.map.map.getBounds().contains({followed_at})")
    page.evaluate("document.activeElement.blur()")
    page.wait_for_timeout(1500)  # let the athletes glide a little for the picture
    shot = screenshot(page, "race-page-desktop.png")
    if os.environ.get("UPDATE_SCREENSHOTS"):
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, README_SHOTS / "race-page-desktop.png")


def test_race_page_on_a_phone(server, open_page):
    page = open_page(viewport=PHONE)
    page.wait_for_selector("#connection[data-state='live']", timeout=DEADLINE_S * 1000)
    wait_until(page, lambda: page.evaluate("raceweb.profile.dots.length") == ATHLETES, "dots")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot = screenshot(page, "race-page-phone.png")
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(shot, README_SHOTS / "race-page-phone.png")


def test_race_list_shows_the_running_race(server, open_page):
    page = open_page("/")
    page.wait_for_selector("#connection[data-state='live']", timeout=DEADLINE_S * 1000)
    card = page.wait_for_selector(f"li.race-card[data-slug='{SLUG}']")
    assert card.get_attribute("data-status") == "running"
    assert card.query_selector("[data-field='athletes']").text_content() == str(ATHLETES)
    screenshot(page, "race-list-desktop.png")


def test_page_survives_a_server_restart_and_resumes(server, open_page):
    page = open_page()
    page.wait_for_selector("#connection[data-state='live']", timeout=DEADLINE_S * 1000)
    wait_until(page, lambda: page.evaluate("raceweb.socket.lastFrame") > 0, "frames")
    page.evaluate("window.pageMarker = 'same page'")
    loaded_at = page.evaluate("raceweb.loadedAt")

    server.stop()
    page.wait_for_selector("#connection[data-state='reconnecting']", timeout=DEADLINE_S * 1000)
    frame_before = page.evaluate("raceweb.socket.lastFrame")
    server.start()

    page.wait_for_selector("#connection[data-state='live']", timeout=DEADLINE_S * 1000)
    wait_until(page, lambda: page.evaluate("raceweb.socket.lastFrame") > frame_before, "new frames")
    assert page.evaluate("window.pageMarker") == "same page", "the page was reloaded"
    assert page.evaluate("raceweb.loadedAt") == loaded_at
    # the athletes keep moving after the restart
    leader = page.evaluate("raceweb.board.order[0].id")
    before = page.evaluate(f"raceweb.state.athletes.get({leader}).distance_m")
    wait_until(
        page,
        lambda: page.evaluate(f"raceweb.state.athletes.get({leader}).distance_m") > before,
        "the leader to move on",
    )


AGREEMENT = """async () => {
  const { FrameSocket, socketUrl } = await import("raceweb/connection.js");
  const { RaceState } = await import("raceweb/state.js");
  const canonical = (state) => JSON.stringify([...state.athletes.values()]
    .sort((a, b) => a.id - b.id)
    .map((a) => Object.fromEntries(Object.keys(a).sort().map((k) => [k, a[k]]))));
  const seen = { v1: {}, v2: {}, protocol: raceweb.socket.socket.protocol };
  const page = raceweb.socket.onFrame;
  raceweb.socket.onFrame = (msg) => { page(msg); seen.v2[msg.frame] = canonical(raceweb.state); };
  const tool = new RaceState();  // the v1 tool: JSON frames, the same merge
  new FrameSocket(socketUrl(document.location.pathname.replace("/races/", "/ws/races/")), {
    onSnapshot: (msg) => tool.applySnapshot(msg),
    onFrame: (msg) => { tool.applyUpdate(msg); seen.v1[msg.frame] = canonical(tool); },
  }).start();
  window.agreement = seen;
}"""


def test_a_v2_page_and_a_v1_tool_agree_on_every_athlete_after_every_frame(server, open_page):
    page = open_page()
    page.wait_for_selector("#connection[data-state='live']", timeout=DEADLINE_S * 1000)
    page.evaluate(AGREEMENT)

    def common() -> list[str]:
        return page.evaluate("Object.keys(agreement.v1).filter((frame) => frame in agreement.v2)")

    wait_until(page, lambda: len(common()) >= 20, "20 frames seen by both")
    assert page.evaluate("agreement.protocol") == "raceweb.v2"
    differing = page.evaluate(
        "Object.keys(agreement.v1).filter((f) => f in agreement.v2 && "
        "agreement.v1[f] !== agreement.v2[f])"
    )
    assert differing == []
    assert page.evaluate("raceweb.state.athletes.size") == ATHLETES


def test_the_json_protocol_page_still_follows_the_race(server, open_page):
    page = open_page(f"/races/{SLUG}/?protocol=v1")
    page.wait_for_selector("#connection[data-state='live']", timeout=DEADLINE_S * 1000)
    assert page.evaluate("raceweb.socket.socket.protocol") == ""
    wait_until(page, lambda: running_athletes(page) >= ATHLETES // 2, "athletes running")
