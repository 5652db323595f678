"""A private race's share link in headless Chromium against `manage.py serve`: a valid link
opens the live page (and its token never reaches the server log), which says so when the
organizer revokes the link's label; an expired link says why.
Screenshots: test-artifacts/ (with UPDATE_SCREENSHOTS=1 also docs/screenshots/private-*.png).
"""

from __future__ import annotations

import os
import shutil

import pytest

from harness.processes import ROOT
from harness.served import ServedRaceWeb
from harness.waiting import wait_until as poll_until
from tests.browser_support import DESKTOP, block_tiles, chromium, screenshot

pytestmark = pytest.mark.browser

SLUG = "private-page-race"
README_SHOTS = ROOT / "docs" / "screenshots"
MINT = (
    "from datetime import UTC, datetime, timedelta; from races.spectators import tokens; "
    "print(tokens.mint({slug!r}, 1, label='press', now=datetime.now(UTC) - timedelta(hours={ago})))"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServedRaceWeb(tmp_path_factory.mktemp("raceweb"))
    served.env["SPECTATOR_TOKEN_RECHECK_SECONDS"] = "0.5"  # a revocation shows at once
    served.add_running_race(SLUG, 20, time_compression=60.0)
    hide = f"Race.objects.filter(slug={SLUG!r}).update(visibility='private')"
    served._python(["manage.py", "shell", "-c", "from races.models import Race; " + hide])
    served.start()
    yield served
    served.stop()


def mint(server: ServedRaceWeb, hours_ago: float) -> str:
    code = MINT.format(slug=SLUG, ago=hours_ago)
    return server._python(["manage.py", "shell", "-c", code]).split()[-1]  # after shell's notes


def keep(shot, name: str) -> None:
    if os.environ.get("UPDATE_SCREENSHOTS"):
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, README_SHOTS / name)


def wait_until(page, condition, what: str):
    return poll_until(
        condition, 60, what, poll_s=0.1, pause=lambda s: page.wait_for_timeout(s * 1000)
    )


def test_a_share_link_opens_the_private_race_and_an_expired_one_says_why(server):
    """Also: revoking the link's label closes the open page's socket, and the page says so."""
    valid, expired = mint(server, 0), mint(server, 3)
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        block_tiles(page)
        assert page.goto(f"{server.url}/races/{SLUG}/").status == 404  # no link: no race
        page.goto(f"{server.url}/races/{SLUG}/#access={valid}")  # pasted into the same tab
        wait_until(page, lambda: page.locator("#race-name").count(), "the race page")
        wait_until(
            page, lambda: page.inner_text("#connection-text") == "Live", "the socket to be live"
        )
        wait_until(page, lambda: page.locator("#board-body .board-row").count() >= 10, "the board")
        assert "#access" not in page.url
        keep(screenshot(page, "private-link-live.png"), "private-link-live.png")
        revoke = f"from races.models import *; r = Race.objects.get(slug={SLUG!r}); "
        revoke += "RevokedSpectatorLabel.objects.create(race=r, label='press')"
        server._python(["manage.py", "shell", "-c", revoke])
        wait_until(
            page,
            lambda: page.inner_text("#connection-text") == "Link withdrawn",
            "the open page to learn its link was withdrawn",
        )
        assert "organizer has withdrawn your share link" in page.inner_text("#map-notice")
        keep(screenshot(page, "private-link-revoked.png"), "private-link-revoked.png")

        late = browser.new_page(viewport=DESKTOP)
        late.on("pageerror", lambda error: errors.append(str(error)))
        late.goto(f"{server.url}/races/{SLUG}/#access={expired}")
        wait_until(late, lambda: "expired" in late.inner_text("#gate-reason"), "the reason to show")
        assert late.inner_text("#gate-title") == "This link no longer works"
        assert "Ask the organizer for a new one" in late.inner_text("#gate-reason")
        keep(screenshot(late, "private-link-expired.png"), "private-link-expired.png")
        assert errors == []
    log = server.log()
    assert valid not in log and expired not in log
