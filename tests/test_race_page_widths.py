"""The race page at every width, on a long race, on both spectator protocols.

A 178 km course with a checkpoint every 5 km, 4-digit bibs, long names, gaps of many
hours: the board must never cut a number (at 1920, 1400, 1024, 768 and 390 px), the
elevation profile must not draw one label over another, and the connection indicator
must stop saying "Live" while frames stall. As in tests/test_race_page.py the socket is
answered by the test, which decides when frames come; here it speaks `raceweb.v2`
(binary, encoded by `races.wire_v2`) or the JSON protocol, as the page asked.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from harness.waiting import wait_until as poll_until
from races import wire_v2
from races.organizer.course_import import create_race
from tests.browser_support import block_tiles, chromium, screenshot
from tests.spectator_fake import FakeAthlete, FakeRace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [(1920, 1080), (1400, 900), (1024, 768), (768, 1024), (390, 844)]
COURSE_KM = 178
CLOCK_S = 14 * 3600  # the leader is past 173 km, the last runners more than 12 h behind
# Every checkpoint is "5 km", "10 km"...; these get an organizer's names instead.
NAMED = {"85 km": "Refuge de la Croix du Bonhomme", "150 km": "Col de la Forclaz"}
# What holds a number on the board (the split cell holds a name, which may give way, and
# a time, which may not).
NUMERIC = (
    ".c-rank, .c-bib, .c-dist, .c-pace, .c-gap, .c-finish .t, .c-finish .b, .c-split .split-time"
)


def long_course_gpx(length_km: float = COURSE_KM) -> bytes:
    """A zig-zag northwards, a point every ~250 m, rolling hills (no waypoints: the import
    places a checkpoint every CHECKPOINT_INTERVAL_KM)."""
    points, lat, lon, metres = [], 45.5, 6.5, 0.0
    step_m = 250.0
    for i in range(int(length_km * 1000 / step_m) + 2):
        ele = 1000 + 800 * math.sin(metres / 20_000) + 150 * math.sin(metres / 3_000)
        points.append(f'<trkpt lat="{lat:.6f}" lon="{lon:.6f}"><ele>{ele:.1f}</ele></trkpt>')
        heading = math.radians(20 if (i // 40) % 2 else -20)
        lat += step_m * math.cos(heading) / 111_320
        lon += step_m * math.sin(heading) / (111_320 * math.cos(math.radians(lat)))
        metres += step_m
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="test" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>Long</name><trkseg>'
        + "".join(points)
        + "</trkseg></trk></gpx>"
    ).encode()


def long_field() -> list[FakeAthlete]:
    """40 athletes, bibs 1001-1040: one finished, the others from 3.45 m/s down to
    1.5 m/s at the back, and one who gave up."""
    names = [
        "Maximiliane Alexandra von Hohenzollern-Sigmaringen",
        "Jo Li",
        "Anna-Lena Müller-Lüdenscheidt",
        "Paul Runner",
    ]
    return [
        FakeAthlete(
            id=n,
            bib=str(1000 + n),
            name=f"{names[n % len(names)]} {n}",
            gender="female" if n % 3 == 0 else "male",
            category=("W" if n % 3 == 0 else "M") + str(20 + 10 * (n % 4)),
            speed_mps=3.6 if n == 1 else 3.45 - (3.45 - 1.5) * (n - 2) / 38,
            status="dnf" if n == 40 else "running",
        )
        for n in range(1, 41)
    ]


class FrameFeed:
    """The server side of the page's socket, in the protocol the page asked for. Frames
    go out only when the test calls `frame()`; pings are answered (pongs keep coming
    while frames stall, as they do when only the broker behind the server is down)."""

    def __init__(self, fake: FakeRace, protocol: str) -> None:
        self.fake = fake
        self.protocol = protocol
        self.sockets = []
        self.held: dict[int, dict] = {}  # what the page holds after the last message

    def handle(self, ws) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda message: self.answer(ws, message))
        snapshot = json.loads(self.fake.snapshot())
        self.held = {a["id"]: a for a in snapshot["athletes"]}
        v2 = self.protocol == "v2"
        ws.send(wire_v2.encode_snapshot(snapshot) if v2 else json.dumps(snapshot))

    def answer(self, ws, message) -> None:
        if isinstance(message, str) and json.loads(message).get("type") == "ping":
            ws.send(json.dumps({"type": "pong"}))

    def frame(self, seconds: float = 1.0) -> None:
        update = json.loads(self.fake.update(seconds=seconds))
        encoded = (
            wire_v2.encode_update(self.held, update)
            if self.protocol == "v2"
            else json.dumps(update)
        )
        self.held = {a["id"]: a for a in update["athletes"]}
        self.sockets[-1].send(encoded)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def long_race():
    return create_race("Ultra Tour 178", "ultra-178.gpx", long_course_gpx())


@pytest.fixture
def open_long_race(browser, live_server, long_race):
    pages = []

    def open_(protocol: str, width: int = 1400, height: int = 900):
        fake = FakeRace(long_race, long_field(), clock_s=CLOCK_S)
        for checkpoint in fake.checkpoints:
            checkpoint["name"] = NAMED.get(checkpoint["name"], checkpoint["name"])
        feed = FrameFeed(fake, protocol)
        page = browser.new_page(viewport={"width": width, "height": height})
        pages.append(page)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        block_tiles(page)
        page.route(
            "**/api/races/*/course.geojson",
            lambda route: route.fulfill(body=fake.geojson(), content_type="application/geo+json"),
        )
        page.route_web_socket("**/ws/races/**", feed.handle)
        page.goto(f"{live_server.url}{long_race.get_absolute_url()}?protocol={protocol}")
        page.errors = errors
        page.wait_for_function("raceweb.state.race !== null && raceweb.board.rows.size > 0")
        page.wait_for_selector("#connection[data-state='live']")
        return page, feed

    yield open_
    for page in pages:
        assert page.errors == [], page.errors
        page.close()


def wait_until(page, condition, what: str, deadline: float = 10):
    return poll_until(condition, deadline, what, pause=lambda s: page.wait_for_timeout(s * 1000))


def settled(page) -> None:
    """Two animation frames: the board has drawn its rows for the current size."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def cut_numbers(page) -> list[str]:
    """Every shown numeric cell of the board whose text does not fit, with its width."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll('#board-body .board-row')].flatMap(row =>
             [...row.querySelectorAll(selector)].filter(el => el.getClientRects().length)
               .filter(el => {
                 const cell = el.closest('[role=cell]');
                 return el.scrollWidth > el.clientWidth
                   || el.getBoundingClientRect().right > cell.getBoundingClientRect().right + 0.5;
               })
               .map(el => `${el.className} "${el.textContent}" ${el.scrollWidth}`))""",
        NUMERIC,
    )


def drawn(name: str, labels: list[str]) -> bool:
    """The profile shows this checkpoint name, whole or shortened with an ellipsis."""
    return any(t == name or (t.endswith("…") and name.startswith(t[:-1])) for t in labels)


def overlapping_labels(page) -> list[str]:
    return page.evaluate(
        """() => {
          const labels = raceweb.profile.labels, found = [];
          labels.forEach((a, i) => labels.slice(i + 1).forEach(b => {
            if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
              found.push(`${a.text} / ${b.text}`);
          }));
          return found;
        }"""
    )


def title_is_whole(page) -> bool:
    """The race name fits its heading (it was cut to "Ultr…" at 768 px)."""
    return page.eval_on_selector("#race-name", "h => h.scrollWidth <= h.clientWidth")


def legend_under_attribution(page) -> bool:
    """The map's legend and Leaflet's attribution overlap (they did at 768 px)."""
    return page.evaluate(
        """() => {
          const a = document.querySelector('.map-legend').getBoundingClientRect();
          const b = document.querySelector('.leaflet-control-attribution').getBoundingClientRect();
          return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
        }"""
    )


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_numbers_are_never_cut_and_profile_labels_never_overlap_at_any_width(
    open_long_race, protocol
):
    page, feed = open_long_race(protocol, *WIDTHS[0])
    feed.frame()
    page.wait_for_function(f"raceweb.socket.lastFrame === {feed.fake.frame}")
    shown = page.evaluate("raceweb.board.visible.map(a => [a.distance_m, a.gap_s])")
    assert max(d for d, _ in shown) > 173_000, "the leader is past 173 km"
    assert max(g or 0 for _, g in shown) > 12 * 3600, "the back of the field is over 12 h behind"
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        wait_until(
            page,
            lambda w=width: (
                page.evaluate("raceweb.profile.width")
                and page.evaluate("document.documentElement.clientWidth") == w
            ),
            f"the page laid out at {width} px",
        )
        settled(page)
        assert cut_numbers(page) == [], f"cut at {width} px"
        texts = page.eval_on_selector_all(
            "#board-body .board-row .c-gap", "els => els.map(e => e.textContent)"
        )
        assert "+" in "".join(texts) and any(re.match(r"\+\d+:\d\d:\d\d$", t) for t in texts)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert title_is_whole(page), f"the race name is cut at {width} px"
        assert not legend_under_attribution(page), f"the map's legend is hidden at {width} px"
        labels = page.evaluate("raceweb.profile.labels.map(l => l.text)")
        assert overlapping_labels(page) == [], f"profile labels overlap at {width} px"
        assert {"Start", "Finish"} <= set(labels), labels
        # named checkpoints before the every-5-km ones (on a narrow profile two long
        # names may not both fit: then the first keeps its place)
        assert drawn(NAMED["85 km"], labels), labels
        if width >= 1024:
            assert all(drawn(name, labels) for name in NAMED.values()), labels
        if width < 760:  # the board is under the map and profile: show it
            page.eval_on_selector(".board", "e => e.scrollIntoView()")
        screenshot(page, f"race-page-long-{width}-{protocol}.png")
    # on the phone: rank, bib, name, distance and gap
    columns = page.eval_on_selector_all(
        "#board-body .board-row:first-child > [role=cell]",
        "cells => cells.filter(c => c.getClientRects().length).map(c => c.className)",
    )
    assert columns == ["c-rank", "c-bib", "c-name", "c-dist", "c-gap"], columns


def frames_flow(page, feed: FrameFeed) -> None:
    """Six frames 300 ms apart: the page learns the usual interval (its stall limit is
    then about its 3 s minimum rather than the 20 s it assumes before it knows)."""
    for _ in range(6):
        feed.frame()
        page.wait_for_timeout(300)
    page.wait_for_function(f"raceweb.socket.lastFrame === {feed.fake.frame}")
    assert page.evaluate("raceweb.socket.stallLimit()") < 20_000, "the interval is learned"


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_stalled_frames_say_delayed_then_live_again(open_long_race, protocol):
    page, feed = open_long_race(protocol)
    frames_flow(page, feed)
    assert page.text_content("#connection-text") == "Live"
    # the feed stops (broker outage); the socket stays open and pings are answered
    page.wait_for_selector("#connection[data-state='stalled']", timeout=15_000)
    wait_until(
        page,
        lambda: re.fullmatch(
            r"Delayed — last update ([4-9]|\d\d) s ago", page.text_content("#connection-text")
        ),
        "the indicator counts the seconds since the last frame",
    )
    assert len(feed.sockets) == 1, "a stall is not a reconnect"
    screenshot(page, f"race-page-stalled-{protocol}.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.documentElement.clientWidth === 390")
    screenshot(page, f"race-page-stalled-phone-{protocol}.png")
    feed.frame(seconds=8)
    page.wait_for_selector("#connection[data-state='live']")
    assert page.text_content("#connection-text") == "Live"


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_finished_race_without_frames_is_not_delayed(open_long_race, protocol):
    page, feed = open_long_race(protocol)
    frames_flow(page, feed)
    feed.sockets[-1].send(json.dumps({"type": "race", "status": "finished"}))
    page.wait_for_function("raceweb.state.race.status === 'finished'")
    limit_ms = page.evaluate("raceweb.socket.stallLimit()")
    page.wait_for_timeout(limit_ms + 1000)  # past the point a running race would stall
    assert page.get_attribute("#connection", "data-state") == "live"
    assert page.text_content("#connection-text") == "Live"
