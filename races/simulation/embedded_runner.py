"""Embedded mode: the simulation runs inside the web process, without Celery or RabbitMQ.

``start()`` (called by ``manage.py serve`` when AMQP_URL is unset) launches a supervisor
thread. It looks for running races that nobody publishes (never claimed, or heartbeat
stale) and drives each in a thread of its own with the same ``run_segment`` the Celery
tasks use, so Stop, reset and resume after a restart behave the same way; a race whose
simulation published everything is left to the relay, which finishes it.

Events go straight to the in-process relay (``races.relay.embedded.publish``, thread-safe).
"""

from __future__ import annotations

import logging
import threading
import uuid

from django.conf import settings
from django.db import close_old_connections

from races.models import Race
from races.organizer import scheduled_start
from races.relay import embedded
from races.simulation import driver as simulation
from simulator.publishers import CallbackPublisher

logger = logging.getLogger(__name__)

POLL_S = 1.0

_wake = threading.Event()
_stopping = threading.Event()
_lock = threading.Lock()
_supervisor: threading.Thread | None = None
_driving: dict[int, threading.Thread] = {}


def start() -> None:
    """Start the supervisor thread of this process (idempotent)."""
    global _supervisor
    with _lock:
        if _supervisor is None or not _supervisor.is_alive():
            _supervisor = threading.Thread(target=_supervise, name="simulation", daemon=True)
            _supervisor.start()


def stop(timeout_s: float = 10.0) -> None:
    """Stop the supervisor and the races it drives (at their next tick); tests, shutdown."""
    global _supervisor
    with _lock:
        supervisor, _supervisor = _supervisor, None
    if supervisor is None:
        return
    _stopping.set()
    _wake.set()
    supervisor.join(timeout_s)
    for thread in list(_driving.values()):
        thread.join(timeout_s)
    _driving.clear()
    _stopping.clear()


def wake() -> None:
    """Look for races to run now rather than at the next poll (a race was just started)."""
    _wake.set()


def start_simulation(race: Race) -> None:
    """lifecycle.on_started hook of embedded mode: the supervisor picks the race up now
    (a tracked race has no simulation: `races_to_run` never lists it)."""
    if race.simulated:
        wake()


def races_to_run() -> list[Race]:
    """Running races that nobody has claimed yet, or whose publisher went quiet."""
    unclaimed = Race.objects.filter(
        status=Race.Status.RUNNING, tracking=Race.Tracking.SIMULATED, sim_owner=""
    )
    return list(unclaimed) + simulation.stale_races(settings.SIMULATION_STALE_SECONDS)


def _supervise() -> None:
    while not _stopping.is_set():
        try:
            scheduled_start.start_due_races()
            for race in races_to_run():
                _drive_if_idle(race)
        except Exception:
            logger.exception("embedded simulation supervisor")
        finally:
            close_old_connections()
        _wake.wait(POLL_S)
        _wake.clear()


def _drive_if_idle(race: Race) -> None:
    with _lock:
        running = _driving.get(race.pk)
        if running is not None and running.is_alive():
            return
        thread = threading.Thread(
            target=drive,
            args=(race.pk, race.generation, race.sim_owner),
            name=f"simulation-{race.slug}",
            daemon=True,
        )
        _driving[race.pk] = thread
    thread.start()


def drive(race_id: int, generation: int, predecessor: str) -> simulation.Outcome:
    """Run one race to its end (or until it is stopped) in the calling thread."""
    owner = f"embedded-{uuid.uuid4()}"
    publisher = CallbackPublisher(embedded.publish)
    outcome = simulation.Outcome.CONTINUE
    try:
        while outcome is simulation.Outcome.CONTINUE and not _stopping.is_set():
            outcome = simulation.run_segment(
                race_id,
                generation,
                owner=owner,
                predecessor=predecessor,
                publisher=publisher,
                budget_s=settings.SIMULATION_SEGMENT_SECONDS,
                sleep=_stopping.wait,
                interrupted=_stopping.is_set,
            )
            predecessor = owner
    except Exception:
        logger.exception("embedded simulation of race %s failed", race_id)
    finally:
        close_old_connections()
    return outcome
