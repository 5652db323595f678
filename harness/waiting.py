"""Waiting for a condition with a deadline: poll, never sleep-and-hope.

`wait_until` polls a condition until it returns something truthy and returns that value;
after the deadline it raises `WaitTimeout` naming what it waited for. The condition may
raise to fail at once (a process that exited will never become ready).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable


class WaitTimeout(AssertionError):
    """A condition was not met in time (an AssertionError: pytest shows it as a failure)."""


def wait_until(
    condition: Callable[[], object],
    within_s: float,
    what: str,
    *,
    poll_s: float = 0.05,
    pause: Callable[[float], object] = time.sleep,
) -> object:
    """Poll `condition` every `poll_s` until it is truthy; raise after `within_s` seconds.

    `pause` is how to spend the time between polls: `time.sleep` by default, Playwright's
    `page.wait_for_timeout` in browser tests (the page keeps running meanwhile).
    """
    deadline = time.monotonic() + within_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {within_s}s waiting for {what}")
        pause(poll_s)


async def async_wait_until(
    condition: Callable[[], object], within_s: float, what: str, *, poll_s: float = 0.05
) -> object:
    """`wait_until` in async code; `condition` may return an awaitable (a DB query)."""
    deadline = time.monotonic() + within_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(poll_s)
