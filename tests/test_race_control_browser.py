"""Race control in a real browser (Chromium) against `manage.py serve` (embedded mode).

An athlete who barely moves (a walker at 30 min/km) raises a "not moving" alert on race
control; marking another athlete DNF there shows on an open spectator page at once.
Screenshots go to docs/screenshots/race-control*.png.
"""

from __future__ import annotations

import shutil
import time

import pytest

from harness.processes import ROOT
from harness.served import ServedRaceWeb
from harness.waiting import wait_until as poll_until
from tests.browser_support import DESKTOP, block_tiles, chromium, screenshot

pytestmark = pytest.mark.browser

SLUG = "control-room-race"
SHOTS = ROOT / "docs" / "screenshots"
DEADLINE_S = 60

# In the server's settings: a race of 7 athletes, bib 99 walking at 30 min/km, and a staff
# organizer, then Start.
SETUP = """
import django
django.setup()
from django.conf import settings
from django.contrib.auth.models import User
from races.organizer import lifecycle
from races.organizer.course_import import create_race
from races.organizer.demo import generate_start_list
from races.organizer.start_list import StartListRow
gpx = "trailrun-vtr-classic-2019.gpx"
athletes = generate_start_list(6, seed=11)
athletes.append(StartListRow("99", "Walter Langsam", "male", "M60", 1800.0))
race = create_race("Control Room Trail", gpx, (settings.DEMO_GPX_DIR / gpx).read_bytes(),
                   athletes, slug="control-room-race", time_compression=30.0, seed=4242)
User.objects.create_superuser("organizer", password="pw-organizer-123")
lifecycle.start_race(race)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServedRaceWeb(tmp_path_factory.mktemp("control"))
    served.env.update(
        RACE_ALERT_NOT_MOVING_S="120", RACE_ALERT_NOT_MOVING_M="150", RACE_ALERT_NO_POSITION_S="600"
    )
    served._python(["-c", SETUP])
    served.start()
    yield served
    print(f"----- server log (tail)\n{served.log()}")
    served.stop()


def wait_until(page, condition, what: str, deadline: float = DEADLINE_S):
    return poll_until(
        condition, deadline, what, poll_s=0.1, pause=lambda s: page.wait_for_timeout(s * 1000)
    )


def test_race_control_shows_a_stalled_athlete_and_a_dnf_reaches_the_spectators(server):
    with chromium() as browser:
        control = browser.new_page(viewport={"width": 1360, "height": 900})
        control.goto(f"{server.url}/control/{SLUG}/")
        assert "/admin/login/" in control.url  # staff only
        control.fill("#id_username", "organizer")
        control.fill("#id_password", "pw-organizer-123")
        control.click("input[type=submit]")
        control.wait_for_selector("#alerts-body")
        assert control.url.endswith(f"/control/{SLUG}/")

        walker = control.locator("#alerts-body tr[data-kind=not_moving]", has_text="Walter")
        wait_until(control, lambda: walker.count() == 1, "the walker's not-moving alert")
        wait_until(control, lambda: control.locator("#athletes-body tr").count() == 7, "athletes")
        assert "Not moving" in walker.text_content() and "km" in walker.text_content()
        control.wait_for_timeout(1200)  # the durations tick once a second
        shot = screenshot(control, "race-control.png")
        shutil.copy(shot, SHOTS / "race-control.png")

        spectator = browser.new_page(viewport=DESKTOP)
        block_tiles(spectator)
        spectator.goto(f"{server.url}/races/{SLUG}/")
        spectator.wait_for_function("window.raceweb && window.raceweb.state.athletes.size === 7")
        bib = "1"
        athlete_id = spectator.evaluate(
            f"[...window.raceweb.state.athletes.values()].find(a => a.bib === '{bib}').id"
        )
        control.select_option("#decide-bib", bib)
        control.select_option("#decide-kind", "dnf")
        control.fill("#decide-reason", "retired at the first aid station, knee")
        began = time.monotonic()
        control.click("#decide-submit")
        badge = spectator.locator(f".board-row[data-id='{athlete_id}'] .badge")
        wait_until(spectator, lambda: badge.text_content() == "DNF", "DNF on the spectator page")
        took = time.monotonic() - began
        print(f"DNF on the spectator page {took:.2f} s after the click")
        assert took < 2.0  # the form's round trip and page load included
        control.wait_for_selector(".control-messages li")
        assert "Did not finish" in control.text_content(".control-messages")
        assert "retired at the first aid station" in control.text_content("#decisions-in-force")
        control.wait_for_timeout(600)
        shot = screenshot(control, "race-control-decided.png")
        shutil.copy(shot, SHOTS / "race-control-decided.png")
        shot = screenshot(spectator, "race-control-spectator-dnf.png")
        shutil.copy(shot, SHOTS / "race-control-spectator-dnf.png")
