"""Race control of a tracked race in a real browser: each athlete's tracker, battery and
newest fix, as the relay stored them (`RaceAlerts.devices`), and none of it on the
spectators' page. Screenshot: docs/screenshots/race-control-trackers.png."""

from __future__ import annotations

import shutil

import pytest

from harness.processes import ROOT
from harness.served import ServedRaceWeb
from harness.waiting import wait_until as poll_until
from tests.browser_support import DESKTOP, block_tiles, chromium, screenshot

pytestmark = pytest.mark.browser

SLUG = "tracked-control-race"
SHOTS = ROOT / "docs" / "screenshots"
DEADLINE_S = 60
NONE = "\u2013"  # what race control shows for a tracker not heard of yet

# A tracked race of 3 started 20 minutes ago; the relay has heard from two trackers (what
# `races.relay.alert_feed` stores for race control).
SETUP = """
import django
django.setup()
from datetime import timedelta
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from races import wire
from races.models import Race, RaceAlerts
from races.organizer import lifecycle
from races.organizer.course_import import create_race
from races.organizer.demo import generate_start_list
gpx = "trailrun-vtr-classic-2019.gpx"
race = create_race("Tracked Control Trail", gpx, (settings.DEMO_GPX_DIR / gpx).read_bytes(),
                   generate_start_list(3, seed=11), slug="tracked-control-race",
                   tracking="tracked")
User.objects.create_superuser("organizer", password="pw-organizer-123")
race = lifecycle.start_race(race)
now = timezone.now()
Race.objects.filter(pk=race.pk).update(started_at=now - timedelta(minutes=20))
first, second, _ = race.athletes.order_by("bib")
RaceAlerts.objects.create(race=race, devices={
    str(first.pk): {"source": "osmand", "fix_time": wire.iso(now - timedelta(seconds=40)),
                    "battery_pct": 15, "accuracy_m": 6.0},
    str(second.pk): {"source": "owntracks", "fix_time": wire.iso(now - timedelta(seconds=5)),
                     "battery_pct": 88, "accuracy_m": 12.5},
})
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServedRaceWeb(tmp_path_factory.mktemp("trackers"))
    served._python(["-c", SETUP])
    served.start()
    yield served
    print(f"----- server log (tail)\n{served.log()}")
    served.stop()


def wait_until(page, condition, what: str, deadline: float = DEADLINE_S):
    return poll_until(
        condition, deadline, what, poll_s=0.1, pause=lambda s: page.wait_for_timeout(s * 1000)
    )


def test_race_control_shows_each_tracker_and_its_battery_spectators_do_not(server):
    with chromium() as browser:
        control = browser.new_page(viewport={"width": 1360, "height": 900})
        control.goto(f"{server.url}/control/{SLUG}/")
        control.fill("#id_username", "organizer")
        control.fill("#id_password", "pw-organizer-123")
        control.click("input[type=submit]")
        control.wait_for_selector("#athletes-body")
        rows = control.locator("#athletes-body tr")
        wait_until(control, lambda: rows.count() == 3, "the three athletes")
        batteries = control.locator("#athletes-body td.battery")
        wait_until(
            control,
            lambda: sorted(batteries.all_text_contents()) == ["15%", "88%", NONE],
            "each athlete's battery",
        )
        low = control.locator("#athletes-body td.battery.low")
        assert low.all_text_contents() == ["15%"]  # a phone about to die stands out
        trackers = sorted(control.locator("#athletes-body td.tracker").all_text_contents())
        assert trackers == ["osmand", "owntracks", NONE]
        fixes = control.locator("#athletes-body td.fix").all_text_contents()
        assert sum(text.endswith("ago") for text in fixes) == 2
        shot = screenshot(control, "race-control-trackers.png")
        shutil.copy(shot, SHOTS / "race-control-trackers.png")

        spectator = browser.new_page(viewport=DESKTOP)
        block_tiles(spectator)
        spectator.goto(f"{server.url}/races/{SLUG}/")
        spectator.wait_for_function("window.raceweb && window.raceweb.state.athletes.size === 3")
        page = spectator.content()
        assert "osmand" not in page and "88%" not in page
