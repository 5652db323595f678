"""The race page in a real browser, against a scripted spectator socket.

The page is served by Django; its WebSocket is answered by the test (Playwright's
WebSocket routing), so every frame, gap and disconnect happens exactly when the test says.
The same page against the real relay and simulation is tests/test_spectator_live.py.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from harness.waiting import wait_until as poll_until
from tests.browser_support import DESKTOP, PHONE, block_tiles, chromium, screenshot
from tests.factories import make_race
from tests.spectator_fake import FakeAthlete, FakeRace, field_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEADLINE_S = 10


def wait_until(page, condition, what: str, deadline: float = DEADLINE_S):
    """Polls condition() until it returns something truthy; fails with `what` after the deadline.

    It waits through Playwright, which keeps delivering the page's socket messages meanwhile.
    """
    return poll_until(condition, deadline, what, pause=lambda s: page.wait_for_timeout(s * 1000))


class ScriptedServer:
    """The server side of the page's sockets: what they sent, and a way to answer."""

    def __init__(self, fake: FakeRace, greet: bool = True) -> None:
        self.fake = fake
        self.greet = greet
        self.sockets = []
        self.received: list[dict] = []

    def handle(self, ws) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda message: self.received.append(json.loads(message)))
        if self.greet:
            ws.send(self.fake.snapshot())

    @property
    def ws(self):
        return self.sockets[-1]

    def resumes(self) -> list[dict]:
        return [m for m in self.received if m.get("type") == "resume"]


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def race():
    return make_race("Page Test Race", athletes=0)


@pytest.fixture
def open_page(browser, live_server, race):
    pages = []

    def open_(athletes: list[FakeAthlete], viewport=DESKTOP, greet: bool = True, hash: str = ""):
        fake = FakeRace(race, athletes)
        server = ScriptedServer(fake, greet=greet)
        page = browser.new_page(viewport=viewport)
        pages.append(page)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        block_tiles(page)
        page.route(
            "**/api/races/*/course.geojson",
            lambda route: route.fulfill(body=fake.geojson(), content_type="application/geo+json"),
        )
        page.route_web_socket("**/ws/races/**", server.handle)
        page.goto(live_server.url + race.get_absolute_url() + hash)
        page.errors = errors
        return page, fake, server

    yield open_
    for page in pages:
        assert page.errors == [], page.errors
        page.close()


def board_bibs(page) -> list[str]:
    """Bibs of the board's rows, top to bottom as they are shown."""
    return page.eval_on_selector_all(
        "#board-body .board-row",
        """rows => rows.sort((a, b) => a.ariaRowIndex - b.ariaRowIndex)
                      .map(r => r.children[1].textContent)""",
    )


def marker_positions(page) -> dict:
    return page.evaluate(
        """() => Object.fromEntries([...raceweb.map.markers].map(
             ([id, m]) => [id, [m.getLatLng().lat, m.getLatLng().lng]]))"""
    )


def record_connection_states(page) -> None:
    """From now on, keep every state the connection indicator shows (even briefly)."""
    page.evaluate(
        """() => {
          window.connectionStates = [];
          const box = document.getElementById('connection');
          new MutationObserver(() => connectionStates.push(box.dataset.state))
            .observe(box, { attributes: true, attributeFilter: ['data-state'] });
        }"""
    )


def wait_live(page) -> None:
    page.wait_for_function("raceweb.state.race !== null && raceweb.board.rows.size > 0")
    page.wait_for_selector("#connection[data-state='live']")


def test_snapshot_shows_course_athletes_board_and_profile(open_page):
    page, fake, _ = open_page(field_of(30))
    wait_live(page)
    # every athlete is on the map, on the board in rank order, and on the profile
    assert len(marker_positions(page)) == 30
    expected = [a["bib"] for a in sorted(fake.public(), key=lambda a: a["rank"])]
    assert page.evaluate("raceweb.board.visible.map(a => a.bib)") == expected
    shown = board_bibs(page)  # only the rows in and near the window exist
    assert len(shown) >= 15 and shown == expected[: len(shown)]
    page.wait_for_function("raceweb.profile.dots.length === 30")
    # the course line is drawn although no tile could load, and the page says so
    page.wait_for_selector(".leaflet-overlay-pane path")
    page.wait_for_selector("#map-notice:not([hidden])")
    assert "course only" in page.text_content("#map-notice")
    # profile dots are really painted: the pixel under the leader's dot is its colour
    colour = page.evaluate(
        """() => {
          const p = raceweb.profile, r = p.ratio;
          const dot = p.dots.find(d => raceweb.state.athletes.get(d.id).rank === 1);
          const px = p.canvas.getContext('2d').getImageData(dot.x * r, dot.y * r, 1, 1).data;
          return [px[0], px[1], px[2]];
        }"""
    )
    assert colour[2] > 150 and colour[0] < 120, colour  # male blue, not background or white
    screenshot(page, "race-page-scripted-desktop.png")


def test_markers_glide_between_updates_instead_of_jumping(open_page):
    page, fake, server = open_page(field_of(5))
    wait_live(page)
    before = marker_positions(page)["1"]
    page.evaluate("window.glideSamples = []")
    server.ws.send(fake.update(seconds=20))
    after = [fake.where(fake.distance_of(fake.athletes[0]))[0], None]
    # sample the marker on every animation frame while it moves
    page.evaluate(
        """() => new Promise(done => {
          const t0 = performance.now();
          const step = () => {
            glideSamples.push(raceweb.map.markers.get(1).getLatLng().lat);
            if (performance.now() - t0 < 1500) requestAnimationFrame(step); else done();
          };
          requestAnimationFrame(step);
        })"""
    )
    samples = page.evaluate("glideSamples")
    target = after[0]
    assert abs(samples[-1] - target) < 1e-6, "the marker ends where the update put it"
    between = [s for s in samples if min(before[0], target) < s < max(before[0], target)]
    assert len(between) >= 5, f"only {len(between)} intermediate positions: it jumped"


def test_board_reorders_in_place_when_positions_change(open_page):
    athletes = [
        FakeAthlete(1, "11", "Lea Front", "female", "W30", speed_mps=2.0, offset_m=300),
        FakeAthlete(2, "22", "Max Chaser", "male", "M30", speed_mps=3.0, offset_m=0),
        FakeAthlete(3, "33", "Ida Third", "female", "W40", speed_mps=1.5, offset_m=0),
    ]
    page, fake, server = open_page(athletes)
    fake.clock_s = 100  # 11 at 500 m, 22 at 300 m
    server.ws.send(fake.snapshot())
    wait_live(page)
    wait_until(page, lambda: board_bibs(page) == ["11", "22", "33"], "initial order")
    page.evaluate(
        "document.querySelectorAll('#board-body .board-row').forEach(r => r.keep = r.dataset.id)"
    )
    server.ws.send(fake.update(seconds=500))  # 11 at 1500 m, 22 at 1800 m: 22 leads
    wait_until(page, lambda: board_bibs(page) == ["22", "11", "33"], "22 overtakes 11")
    kept = page.evaluate(
        """[...document.querySelectorAll('#board-body .board-row')]
             .every(r => r.keep === r.dataset.id)"""
    )
    assert kept, "rows were re-created instead of moved"
    assert page.text_content("#board-body .board-row[aria-rowindex='2'] .c-rank") == "1"
    assert page.eval_on_selector(
        "#board-body .board-row[aria-rowindex='2']", "r => r.classList.contains('rank-up')"
    )


def test_search_filter_and_keyboard_follow(open_page):
    page, _, _ = open_page(field_of(24))
    wait_live(page)
    page.fill("#board-search", "17")
    wait_until(page, lambda: board_bibs(page) == ["17"], "search by bib")
    page.fill("#board-search", "anna runner 1")  # case-insensitive name search
    wait_until(page, lambda: set(board_bibs(page)) == {"12", "15", "18"}, "search by name")
    page.fill("#board-search", "")
    page.select_option("#filter-gender", "female")
    wait_until(page, lambda: len(board_bibs(page)) == 8, "gender filter")
    ranks = page.eval_on_selector_all(
        "#board-body .board-row",
        """rows => rows.sort((a, b) => a.ariaRowIndex - b.ariaRowIndex)
                      .map(r => r.children[0].textContent)""",
    )
    assert ranks == [str(n) for n in range(1, 9)], "ranks within the filter"
    page.select_option("#filter-gender", "")
    page.select_option("#filter-category", "W30")
    wait_until(page, lambda: set(board_bibs(page)) == {"9", "21"}, "category W30")
    page.select_option("#filter-category", "")
    # keyboard: from the search box into the rows, down one, Enter follows
    page.focus("#board-search")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    second = board_bibs(page)[1]
    assert page.evaluate("document.activeElement.children[1].textContent") == second
    page.keyboard.press("Enter")
    page.wait_for_selector("#follow:not([hidden])")
    assert page.text_content("#follow .follow-bib") == second
    assert (
        page.get_attribute(f"#board-body .board-row[data-id='{second}']", "aria-current") == "true"
    )
    page.keyboard.press("Escape")
    page.wait_for_selector("#follow", state="hidden")


def test_follow_from_the_map_keeps_the_athlete_in_view(open_page):
    spread_out = [
        FakeAthlete(
            n,
            str(n),
            f"Runner {n}",
            "female" if n % 2 else "male",
            "W30" if n % 2 else "M30",
            speed_mps=2.5,
            offset_m=900.0 * n,
        )
        for n in range(1, 9)
    ]
    page, fake, server = open_page(spread_out)
    wait_live(page)
    point = page.evaluate(
        """() => {
          const m = raceweb.map, p = m.map.latLngToContainerPoint(m.markers.get(3).getLatLng());
          const box = document.getElementById('map').getBoundingClientRect();
          return [box.left + p.x, box.top + p.y];
        }"""
    )
    page.mouse.click(*point)
    page.wait_for_selector("#follow:not([hidden])")
    assert page.text_content("#follow .follow-name") == "Runner 3"
    assert "km" in page.text_content("#follow .follow-stats")
    page.wait_for_function("raceweb.profile.followed === 3")
    # as the athlete runs on for a long time, the map follows it
    for _ in range(12):
        server.ws.send(fake.update(seconds=60))
        page.wait_for_timeout(120)
    in_view = page.wait_for_function(
        """() => {
          const m = raceweb.map;
          return m.map.getBounds().contains(m.markers.get(3).getLatLng());
        }"""
    )
    assert in_view
    splits = page.eval_on_selector_all("#follow .splits tbody tr:not(.pending)", "r => r.length")
    assert splits >= 1
    assert "in " in page.text_content("#follow .stat:last-child .v")  # ETA to the finish


def test_a_link_to_an_athlete_follows_it(open_page):
    page, _, _ = open_page(field_of(12), hash="#bib=7")
    page.wait_for_selector("#follow:not([hidden])")
    assert page.text_content("#follow .follow-bib") == "7"
    page.wait_for_function("raceweb.profile.background !== null")  # the course is in
    in_view = """() => { const m = raceweb.map;
                          return m.map.getBounds().contains(m.markers.get(7).getLatLng()); }"""
    assert page.evaluate(in_view), "the course fit must not take the followed athlete away"
    page.click("#follow .follow-close")
    page.wait_for_selector("#follow", state="hidden")
    assert page.evaluate("location.hash") == ""


def test_a_gap_in_frame_numbers_asks_for_the_missed_frames(open_page):
    page, fake, server = open_page(field_of(4))
    wait_live(page)
    last = fake.frame
    skipped = fake.update(seconds=5, frame=last + 1)
    server.ws.send(fake.update(seconds=5, frame=last + 2))
    wait_until(page, server.resumes, "a resume request")
    assert server.resumes()[-1] == {"type": "resume", "seq": last}
    assert page.evaluate("raceweb.socket.lastFrame") == last, "the frame after the gap waits"
    server.ws.send(skipped)
    server.ws.send(fake.update(seconds=0, frame=last + 2))
    page.wait_for_function(f"raceweb.socket.lastFrame === {last + 2}")


def test_reconnects_with_backoff_and_resumes_without_reload(open_page):
    page, fake, server = open_page(field_of(6))
    wait_live(page)
    page.evaluate("window.pageMarker = 'still the same page'")
    loaded_at = page.evaluate("raceweb.loadedAt")
    server.ws.send(fake.update())
    page.wait_for_function(f"raceweb.socket.lastFrame === {fake.frame}")
    last = fake.frame
    server.greet = False
    record_connection_states(page)
    server.ws.close(code=1011, reason="server restart")
    wait_until(page, lambda: len(server.sockets) == 2, "a new connection")
    assert page.evaluate("connectionStates")[0] == "reconnecting"
    assert server.ws.url.endswith(f"?resume={last}"), "the new socket asks for what it missed"
    # the server answers the resume with what was missed
    server.ws.send(fake.update())
    page.wait_for_selector("#connection[data-state='live']")
    page.wait_for_function(f"raceweb.socket.lastFrame === {fake.frame}")
    assert page.evaluate("window.pageMarker") == "still the same page"
    assert page.evaluate("raceweb.loadedAt") == loaded_at


def test_a_server_that_keeps_refusing_is_retried_later_and_later(open_page):
    page, _fake, server = open_page(field_of(3))
    wait_live(page)
    attempts: list[float] = []

    def refuse(ws):
        attempts.append(time.monotonic())
        ws.close(code=1011, reason="down")

    page.route_web_socket("**/ws/races/**", refuse)
    server.ws.close(code=1011, reason="down")
    wait_until(page, lambda: len(attempts) >= 5, "five reconnect attempts", deadline=20)
    waits = [b - a for a, b in itertools.pairwise(attempts)]
    # full jitter over a doubling cap: each wait is at least the previous cap, so they grow
    assert all(later > earlier * 0.9 for earlier, later in itertools.pairwise(waits)), waits
    assert waits[-1] > 1.5, waits
    assert page.get_attribute("#connection", "data-state") == "reconnecting"
    # while it waits, it says how long (then "Reconnecting…" during the attempt)
    wait_until(page, lambda: "Reconnecting in" in page.text_content("#connection"), "countdown")


def test_names_with_markup_are_shown_as_text(open_page):
    hostile = '<img src=x onerror="window.owned=1">Eve'
    athletes = [FakeAthlete(1, "<b>7</b>", hostile, "female", "<i>W</i>", speed_mps=3.0)]
    page, _, _ = open_page(athletes)
    wait_live(page)
    assert page.text_content("#board-body .board-row .c-name") == hostile
    page.click("#board-body .board-row")
    page.wait_for_selector("#follow:not([hidden])")
    assert page.text_content("#follow .follow-name") == hostile
    assert page.text_content(".leaflet-tooltip.bib-tip") == f"<b>7</b> · {hostile}"
    assert page.query_selector("main img[src='x'], .leaflet-tooltip img") is None
    assert page.evaluate("window.owned") is None


def test_phone_layout_stacks_map_profile_and_board(open_page):
    page, _, _ = open_page(field_of(40), viewport=PHONE)
    wait_live(page)
    page.wait_for_function("raceweb.profile.dots.length === 40")
    boxes = {
        name: page.eval_on_selector(
            selector, "e => { const b = e.getBoundingClientRect(); return [b.x, b.y, b.width]; }"
        )
        for name, selector in [
            ("map", ".map-area"),
            ("profile", ".profile-area"),
            ("board", ".board"),
        ]
    }
    assert boxes["map"][1] < boxes["profile"][1] < boxes["board"][1]
    assert all(box[2] <= PHONE["width"] for box in boxes.values()), boxes
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "race-page-scripted-phone.png")
