"""The organizer's path through the admin in a real browser: upload, preview, save, buttons."""

from __future__ import annotations

import pytest

from races.models import Race
from tests.browser_support import DESKTOP, chromium, screenshot
from tests.conftest import SAMPLE_GPX

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START_LIST = "bib,name,gender,category,pace\n1,Jane Smith,F,W40,5:10\n2,Joe Bloggs,M,M30,\n"


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def admin_page(browser, live_server, django_user_model):
    django_user_model.objects.create_superuser("organizer", password="pw-organizer-123")
    page = browser.new_page(viewport=DESKTOP)
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "organizer")
    page.fill("#id_password", "pw-organizer-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    yield page
    page.close()


def test_upload_preview_save_keeps_the_start_list_and_offers_start(
    admin_page, live_server, tmp_path
):
    page = admin_page
    start_list = tmp_path / "athletes.csv"
    start_list.write_text(START_LIST)
    page.goto(live_server.url + "/admin/races/race/add/")
    page.fill("#id_name", "Vienna Trail")
    page.fill("#id_time_compression", "20")
    page.set_input_files("#id_gpx_file", str(SAMPLE_GPX / "trailrun-vtr-classic-2019.gpx"))
    page.set_input_files("#id_start_list_file", str(start_list))
    page.click("input[name=_preview]")
    page.wait_for_selector(".messagelist .info")
    assert "Preview: check the course and start list below" in page.text_content(".messagelist")
    assert page.locator(".errornote").count() == 0
    assert "athletes.csv: 2 athletes, kept for saving" in page.text_content("body")
    assert not Race.objects.exists()
    screenshot(page, "admin-preview.png")

    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert "Imported 2 athletes from the start list." in page.text_content(".messagelist")
    assert Race.objects.get().athletes.count() == 2
    assert page.locator(".object-tools a.race-start").count() == 1
    screenshot(page, "admin-race-draft.png")

    page.click(".object-tools a.race-start")
    page.wait_for_selector("input[value='Yes, start']")
    assert "with 2 athletes and 0 recorded positions" in page.text_content("#content-main")
    screenshot(page, "admin-confirm-start.png")


def test_a_bad_slug_is_refused_in_the_browser_and_the_files_are_kept(admin_page, live_server):
    page = admin_page
    page.goto(live_server.url + "/admin/races/race/add/")
    page.fill("#id_name", "Bad")
    page.fill("#id_slug", "Bad Slug!")
    page.set_input_files("#id_gpx_file", str(SAMPLE_GPX / "trailrun-vtr-classic-2019.gpx"))
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    assert "letters, numbers, underscores or hyphens" in page.text_content(".field-slug")
    page.fill("#id_slug", "good-slug")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert Race.objects.get().slug == "good-slug"


def test_a_running_race_page_is_read_only_and_says_why(admin_page, live_server):
    from tests.factories import make_race

    race = make_race("Vienna Trail", slug="vienna-trail", athletes=3)
    Race.objects.filter(pk=race.pk).update(status=Race.Status.RUNNING)
    page = admin_page
    page.goto(f"{live_server.url}/admin/races/race/{race.pk}/change/")
    page.wait_for_selector(".object-tools a.race-stop")
    assert "its course, start list and simulation settings are fixed" in page.text_content("body")
    assert page.locator("#id_start_list_file").count() == 0
    screenshot(page, "admin-race-running.png")
