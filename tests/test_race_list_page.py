"""The race list in a real browser, against a scripted race-list socket."""

from __future__ import annotations

import json

import pytest

from races.models import Race
from tests.browser_support import DESKTOP, chromium, screenshot
from tests.factories import make_race

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def card_order(page) -> list[str]:
    return page.eval_on_selector_all(
        "#race-cards li:not([hidden])", "cards => cards.map(c => c.dataset.slug)"
    )


def test_status_changes_reorder_the_list_live(browser, live_server):
    make_race("Morning Trail", status=Race.Status.RUNNING, athletes=4, slug="morning")
    make_race("Evening Loop", status=Race.Status.SCHEDULED, athletes=3, slug="evening")
    make_race("Old Classic", status=Race.Status.FINISHED, athletes=2, slug="old")
    sockets = []

    def handle(ws):
        sockets.append(ws)
        ws.send(json.dumps({"type": "races", "races": []}))

    page = browser.new_page(viewport=DESKTOP)
    page.route_web_socket("**/ws/races/", handle)
    page.goto(live_server.url + "/")
    page.wait_for_selector("#connection[data-state='live']")
    assert card_order(page) == ["morning", "evening", "old"]

    # the evening race starts and the morning one ends: the running race comes first
    for slug, status in [("evening", "running"), ("morning", "finished")]:
        sockets[-1].send(json.dumps({"type": "race", "slug": slug, "status": status}))
    page.wait_for_function(
        "document.querySelector('li[data-slug=evening]').dataset.status === 'running'"
    )
    page.wait_for_function("document.querySelector('#race-cards li').dataset.slug === 'evening'")
    assert page.text_content("li[data-slug=evening] [data-field=status]") == "Live"
    assert card_order(page)[0] == "evening"

    # a race nobody had seen appears, named as text; a race reset to draft disappears
    sockets[-1].send(
        json.dumps({"type": "race", "slug": "new", "name": "<b>New</b> race", "status": "running"})
    )
    sockets[-1].send(json.dumps({"type": "race", "slug": "old", "status": "draft"}))
    page.wait_for_selector("li[data-slug=new]")
    page.wait_for_selector("li[data-slug=old]", state="hidden")
    assert page.text_content("li[data-slug=new] h2") == "<b>New</b> race"
    assert set(card_order(page)[:2]) == {"evening", "new"}
    screenshot(page, "race-list-scripted.png")
    page.close()
