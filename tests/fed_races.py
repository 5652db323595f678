"""Races whose positions a test publishes itself, each confirmed by the broker, so the test
knows every position that must arrive (the fault and cluster-fault suites use them)."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.test import override_settings

from harness.waiting import async_wait_until
from races import wire
from races.models import LiveRace, Position, Race
from races.organizer import lifecycle
from simulator.publishers import AmqpPublisher
from tests.factories import EventFeed, make_race, unique_name

DEADLINE_S = 60.0


class ConfirmedRace:
    """A started race whose events the test publishes (as the simulator would, with seq:
    a tracked race takes them as they are).

    `declare_via` is the broker URL the lifecycle declares the race's objects through,
    `publish_via` the one positions are published to (defaults to the same).
    """

    def __init__(
        self, declare_via: str, publish_via: str | None = None, *, athletes: int = 8
    ) -> None:
        # Tracked: no simulation publishes into it, and the watchdog never revives one (a
        # simulated race parked in an idle queue was revived mid-test, its simulated
        # positions then stored beside the test's own).
        race = make_race(unique_name("Fed"), athletes=athletes, tracking=Race.Tracking.TRACKED)
        with override_settings(AMQP_URL=declare_via, EMBEDDED=False):
            self.race = lifecycle.start_race(race)
        self.feed = EventFeed(self.race)
        self.confirmed: list[dict] = []
        self.publisher = AmqpPublisher(publish_via or declare_via)

    def publish(self, events: list[dict]) -> None:
        """Returns once the broker confirmed the whole batch (a batch nacked while a queue
        elects a new leader is sent again)."""
        self.publisher.publish(wire.exchange_name(self.race.slug), events)
        self.confirmed.extend(events)

    def stored_seqs(self) -> list[int]:
        return list(Position.objects.filter(race=self.race).values_list("seq", flat=True))

    def frame(self) -> int:
        return LiveRace.objects.filter(race=self.race).values_list("frame", flat=True).first() or 0


async def publish_ticks(race: ConfirmedRace, seconds: range) -> None:
    """Publish the feed's start events (second 0) or the positions at each second."""
    for second in seconds:
        events = race.feed.starts() if second == 0 else race.feed.tick(second)
        await sync_to_async(race.publish)(events)
        await asyncio.sleep(0.05)


async def everything_stored(race: ConfirmedRace, what: str) -> list[int]:
    """Wait until the stored seqs are exactly the confirmed ones; say which are missing."""
    expected = sorted({event["seq"] for event in race.confirmed})
    stored: list[int] = []

    async def done() -> bool:
        stored[:] = sorted(await sync_to_async(race.stored_seqs)())
        return stored == expected

    try:
        await async_wait_until(done, DEADLINE_S, what)
    except AssertionError as error:
        missing = sorted(set(expected) - set(stored))
        raise AssertionError(f"{error}; {len(missing)} missing: {missing[:40]}") from None
    return stored
