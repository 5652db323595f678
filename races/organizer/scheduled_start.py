"""A scheduled race starts by itself at its start time.

`start_due_races` starts every race that is scheduled and whose `scheduled_start` has come.
It runs where something already wakes up regularly: the embedded runner's supervisor loop
(every second) and, in distributed mode, the Celery watchdog (every
`SIMULATION_WATCHDOG_SECONDS`, 5 by default): a race starts at most that late. Two callers
at once are harmless: the lifecycle locks the race's row, and the second finds it running.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from races.models import Race
from races.organizer import lifecycle

logger = logging.getLogger(__name__)


def due_races(now: datetime | None = None) -> list[Race]:
    now = now or timezone.now()
    return list(
        Race.objects.filter(status=Race.Status.SCHEDULED, scheduled_start__lte=now).order_by(
            "scheduled_start"
        )
    )


def start_due_races(now: datetime | None = None) -> list[Race]:
    """Start every scheduled race whose time has come; the races started."""
    started = []
    for race in due_races(now):
        try:
            started.append(lifecycle.start_race(race))
        except lifecycle.TransitionRefused as refused:  # started meanwhile, or no course
            logger.info("scheduled race %s not started: %s", race.slug, refused)
            continue
        logger.info("race %s started at its scheduled time %s", race.slug, race.scheduled_start)
    return started
