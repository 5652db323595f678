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
