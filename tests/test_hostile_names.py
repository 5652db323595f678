"""Race and athlete names with HTML or script in them are shown as text, never run.

A real Chromium opens the race page; the race name comes from the database through the
template, athlete names through the page's socket (the scripted server of
tests/test_race_page.py), and the follow tooltip and board render them.
"""

import pytest

from tests.factories import make_race
from tests.spectator_fake import field_of
from tests.test_race_page import browser, open_page, wait_live  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RACE_NAME = "<img src=x onerror=\"window.pwned='race'\">Night <b>Trail</b>"
ATHLETE_NAMES = [
    "<script>window.pwned='script'</script>",
    "<img src=x onerror=\"window.pwned='img'\">",
    '"><svg onload="window.pwned=\'svg\'">',
    "Zoë <i>O'Brien</i> & co",
]


@pytest.fixture
def race():
    return make_race(RACE_NAME, athletes=0)


def test_html_in_names_is_shown_as_text_and_never_runs(open_page):  # noqa: F811
    athletes = field_of(len(ATHLETE_NAMES))
    for athlete, name in zip(athletes, ATHLETE_NAMES, strict=True):
        athlete.name = name
    page, _, _ = open_page(athletes)
    wait_live(page)
    page.click("#board-body .board-row >> nth=0")  # follow: the name goes into a tooltip
    page.wait_for_selector("#follow:not([hidden])")

    assert page.text_content("#race-name") == RACE_NAME
    assert RACE_NAME in page.title()
    shown = page.inner_text("body")
    for name in ATHLETE_NAMES:
        assert name in shown, name
    assert page.evaluate("window.pwned") is None
    # Nothing from the names became an element.
    assert page.evaluate("document.querySelectorAll('img[src=x], svg[onload], b, i').length") == 0
