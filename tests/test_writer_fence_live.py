"""A real daphne (`manage.py serve`, embedded mode) on a Twisted without one of the
internals the socket writer reads: spectators still get every frame, through the ASGI
send, and the process says so once and counts it."""

from __future__ import annotations

import asyncio
import os
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from harness.processes import ROOT
from harness.served import ServedRaceWeb
from harness.spectator_client import Spectator
from harness.waiting import async_wait_until

SLUG = "fenced-race"
# Used by the fast path only (autobahn checks for it before calling it): safe to remove.
REMOVED = "twisted.internet.tcp:_AbortingMixin.abortConnection"
UPDATES = 8


def fallbacks(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "raceweb_socket_writer_fallbacks_total"
    }


async def test_spectators_get_every_frame_when_an_internal_is_missing(tmp_path):
    served = ServedRaceWeb(tmp_path)
    site = str(ROOT / "tests" / "fence_site")
    served.env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))
    served.env["RACEWEB_TEST_REMOVE_INTERNAL"] = REMOVED
    await asyncio.to_thread(served.add_running_race, SLUG, 5, time_compression=120.0)
    await asyncio.to_thread(served.start)
    spectators: list[Spectator] = []
    try:
        url = f"{served.url.replace('http', 'ws')}/ws/races/{SLUG}/"
        spectators = [await Spectator(url).open() for _ in range(2)]
        for spectator in spectators:
            await async_wait_until(
                lambda s=spectator: len(s.of_type("update")) >= UPDATES, 60, "updates"
            )
        for spectator in spectators:
            await spectator.close()
        for spectator in spectators:
            frames = spectator.frames()
            assert frames == list(range(frames[0], frames[0] + len(frames))), "a frame missed"
        received = sum(len(spectator.messages) for spectator in spectators)

        counted = await asyncio.to_thread(fallbacks, served.url)
        assert counted.get("missing_internal", 0) >= received
        assert counted.get("write_error", 0) == 0
        log = served.log()
        warnings = [line for line in log.splitlines() if "library internals missing" in line]
        assert len(warnings) == 1, log
        assert "twisted.internet.tcp.Connection.abortConnection" in warnings[0]
    finally:
        await asyncio.to_thread(served.stop)
        print(f"----- server log (tail)\n{served.log()}")  # shown when the test fails
