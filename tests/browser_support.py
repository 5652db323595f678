"""Headless Chromium from Debian's package, driven by Playwright (never a downloaded one)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.chromium import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE
from tests.conftest import IN_CI

__all__ = ["DESKTOP", "PHONE", "block_tiles", "chromium", "screenshot"]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if IN_CI:
        pytest.fail(f"{CHROMIUM} is missing (CI must install Debian's chromium package)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@contextmanager
def chromium():
    """A headless Chromium for a module's tests.

    Playwright's sync API keeps an event loop in this thread, and Django refuses ORM calls
    when it sees one. Django's documented way out for Playwright is this variable; it is set
    only while the browser runs (the ORM calls here are the test's own, never concurrent).
    """
    require_chromium()
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def block_tiles(page) -> None:
    """The network is closed here: make tile requests fail at once, as they would offline."""
    page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


STATIC_JS = Path(__file__).resolve().parent.parent / "static" / "js"


def run_module_page(page_html: str, data: dict[str, str], result: str) -> object:
    """Load `page_html` at the root of a test origin in Chromium, with the project's
    `/static/js/*.js` and each `data` path (e.g. "/fixture.json" -> its JSON text) served,
    wait until the page sets `window.<result>`, and return it. A script error fails the test.
    """
    origin = "http://raceweb.test"

    def serve(route) -> None:
        path = route.request.url.removeprefix(origin)
        script = STATIC_JS / path.rsplit("/", 1)[1]
        if path == "/":
            route.fulfill(body=page_html, content_type="text/html")
        elif path in data:
            route.fulfill(body=data[path], content_type="application/json")
        elif path.startswith("/static/js/") and script.is_file():
            route.fulfill(path=str(script), content_type="text/javascript")
        else:
            route.abort()

    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route(f"{origin}/**", serve)
        page.goto(f"{origin}/")
        page.wait_for_function(f"window.{result} !== undefined || false", timeout=30_000)
        value = page.evaluate(f"window.{result}")
        page.close()
    assert errors == []
    return value
