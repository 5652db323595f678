"""Celery tasks: a race runs as a chain of short segments; a watchdog revives dead chains.

Each ``simulate_race`` task publishes about ``SIMULATION_SEGMENT_SECONDS`` of ticks and
then enqueues its successor, naming itself as the predecessor. A stopped race, a newer
generation or another owner ends the chain (races/simulation/driver.py). A worker that dies
mid-segment gets its task delivered again (late ack, rejected on worker loss); the
watchdog covers what is left, e.g. a chain whose successor was never enqueued. A chain
that published every athlete's last event ends; the relay finishes the race.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from races.models import Race
from races.organizer import scheduled_start
from races.relay import broker
from races.simulation import driver as simulation
from simulator.publishers import shared_amqp_publisher

logger = logging.getLogger(__name__)


def enqueue_segment(race_id: int, generation: int, predecessor: str = "") -> None:
    """Queue one segment on the broker and queue that the settings name at call time.

    A segment nobody picked up for a while expires in the broker: by then the watchdog
    has queued a fresh one, and a race that no longer exists leaves no task behind.
    """
    expires_s = settings.SIMULATION_SEGMENT_SECONDS + 4 * settings.SIMULATION_STALE_SECONDS
    with simulate_race.app.connection_for_write(settings.AMQP_URL) as connection:
        simulate_race.apply_async(
            (race_id, generation),
            {"predecessor": predecessor},
            queue=broker.simulation_queue(settings.SIMULATION_QUEUE),
            connection=connection,
            expires=expires_s,
        )


@shared_task(bind=True, name="races.tasks.simulate_race")
def simulate_race(self, race_id: int, generation: int, predecessor: str = "") -> str:
    """One segment of a race's simulation."""
    owner = self.request.id
    outcome = simulation.run_segment(
        race_id,
        generation,
        owner=owner,
        predecessor=predecessor,
        publisher=shared_amqp_publisher(settings.AMQP_URL),
        budget_s=settings.SIMULATION_SEGMENT_SECONDS,
    )
    if outcome is simulation.Outcome.CONTINUE:
        enqueue_segment(race_id, generation, predecessor=owner)
    logger.info("race %s generation %s segment %s: %s", race_id, generation, owner, outcome.value)
    return outcome.value


@shared_task(name="races.tasks.watchdog")
def watchdog() -> int:
    """Restart every running race whose simulation went quiet before publishing everything.

    A race whose simulation published everything waits for the relay to finish it; it is
    never restarted, and while it waits the watchdog says so.
    """
    # Scheduled races whose start time has come start here (each start enqueues its own
    # first segment through the lifecycle's hooks).
    scheduled_start.start_due_races()
    restarted = 0
    for race in simulation.quiet_races(settings.SIMULATION_STALE_SECONDS):
        if simulation.published_everything(race):
            logger.warning(
                "race %s: every event published, not finished yet: is the relay running?",
                race.slug,
            )
            continue
        logger.warning("race %s: no heartbeat since %s, restarting", race.slug, race.sim_heartbeat)
        enqueue_segment(race.pk, race.generation, predecessor=race.sim_owner)
        restarted += 1
    return restarted


def start_simulation(race: Race) -> None:
    """lifecycle.on_started hook of distributed mode (after commit): the first segment.

    A tracked race has no simulation: its positions come from the athletes' devices."""
    if race.simulated:
        enqueue_segment(race.pk, race.generation)
