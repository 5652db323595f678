"""What the relay reads and changes in the database besides its frames: the running
races it takes on, a race's summary for its notices, and the finish of a race (the relay
alone decides that everyone is in). Run in the relay's database thread (`RelayCore._in_db`)."""

from __future__ import annotations

import logging

from races import wire

logger = logging.getLogger(__name__)


def running_race_slugs() -> list[str]:
    from races.models import Race

    return list(Race.objects.filter(status=Race.Status.RUNNING).values_list("slug", flat=True))


def race_summary(slug: str) -> dict | None:
    from races.models import Race

    race = Race.objects.filter(slug=slug).first()
    return wire.race_summary(race) if race else None


def finish_race(race_id: int) -> None:
    """Everyone is in or out: the race is over (lifecycle notifies the relays)."""
    from races.models import Race
    from races.organizer import lifecycle

    race = Race.objects.filter(pk=race_id).first()
    if race is None or race.status != Race.Status.RUNNING:
        return
    try:
        lifecycle.finish_race(race)
    except lifecycle.TransitionRefused as refused:
        logger.info("race %s not finished: %s", race.slug, refused)
