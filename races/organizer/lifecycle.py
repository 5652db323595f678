"""The race state machine: every status change goes through here.

draft ──► scheduled ──► running ──► finished
  │                        │
  └────────► running       └──► stopped
finished / stopped / scheduled ──reset──► draft (positions cleared)
"""

from collections.abc import Callable

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from races.models import Position, Race
from races.relay import live_store

Status = Race.Status

ALLOWED = {
    Status.DRAFT: {Status.SCHEDULED, Status.RUNNING},
    Status.SCHEDULED: {Status.RUNNING, Status.DRAFT},
    Status.RUNNING: {Status.FINISHED, Status.STOPPED},
    Status.FINISHED: {Status.DRAFT},
    Status.STOPPED: {Status.DRAFT},
}

# Called after the transaction that changed a race's status commits, e.g. to declare its
# exchange and start its simulation. Other modules register here, so this one stays
# free of broker and Celery code.
on_started: list[Callable[[Race], None]] = []
on_stopped: list[Callable[[Race], None]] = []
on_reset: list[Callable[[Race], None]] = []
# After a race is deleted (admin, shell, anywhere): e.g. remove its broker objects.
on_deleted: list[Callable[[Race], None]] = []
# After a race-control decision commits (races.organizer.decisions): send it to the relay.
on_decided: list[Callable] = []


class TransitionRefused(Exception):
    """A status change that the state machine does not allow; the message says why."""


@receiver(post_delete, sender=Race, dispatch_uid="races.lifecycle.race_deleted")
def race_deleted(sender, instance: Race, **kwargs) -> None:
    """Run the `on_deleted` hooks once the delete commits (never for a rolled-back one)."""
    race_id = instance.pk
    transaction.on_commit(lambda: _forget_stray_positions(race_id))
    for hook in on_deleted:
        transaction.on_commit(lambda hook=hook: hook(instance))


def _forget_stray_positions(race_id: int) -> None:
    """Positions a relay stored while the race was being deleted (it may be deleted while it
    runs): the delete took the race's positions, but the relay's frame could commit between
    that and the race row, which no database constraint guards (`Position`). Once the race
    row is gone, no relay stores another frame of it."""
    Position.objects.filter(race_id=race_id).delete()


def deletion_refusal(race: Race) -> str:
    """Why the admin will not delete `race` now ("" when it will): a running race, whose
    spectators watch it and whose positions are still arriving, is stopped first."""
    if race.status == Status.RUNNING:
        return (
            f"{race.name} is running: stop it before deleting it (deleting removes its "
            "course, start list and every recorded position)."
        )
    return ""


def check_transition(race: Race, target: str) -> None:
    if target not in ALLOWED[Status(race.status)]:
        current, wanted = Status(race.status).label, Status(target).label
        raise TransitionRefused(_why(race, current, wanted))
    if target in (Status.RUNNING, Status.SCHEDULED):
        if not hasattr(race, "course"):
            raise TransitionRefused(f"{race.name} has no course: upload a GPX file first.")
        if not race.athletes.exists():
            raise TransitionRefused(f"{race.name} has no athletes: add a start list first.")


def _why(race: Race, current: str, wanted: str) -> str:
    hints = {
        Status.RUNNING: "stop it first",
        Status.FINISHED: "reset it to start again",
        Status.STOPPED: "reset it to start again",
        Status.DRAFT: "start it first",
    }
    hint = hints.get(race.status, "")
    return f"{race.name} is {current.lower()}, so it cannot become {wanted.lower()}: {hint}."


def _change(race: Race, target: str, hooks: list[Callable[[Race], None]], **fields) -> Race:
    with transaction.atomic():
        locked = Race.objects.select_for_update().get(pk=race.pk)
        check_transition(locked, target)
        locked.status = target
        locked.generation += 1
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
        for hook in hooks:
            transaction.on_commit(lambda hook=hook: hook(locked))
    return locked


def schedule_race(race: Race) -> Race:
    return _change(race, Status.SCHEDULED, [])


def start_race(race: Race) -> Race:
    # A fresh simulation: nobody owns it yet and no tick is published.
    return _change(
        race,
        Status.RUNNING,
        on_started,
        started_at=timezone.now(),
        finished_at=None,
        sim_owner="",
        sim_tick=-1,
        sim_heartbeat=None,
    )


def stop_race(race: Race) -> Race:
    return _change(race, Status.STOPPED, on_stopped, finished_at=timezone.now())


def finish_race(race: Race) -> Race:
    return _change(race, Status.FINISHED, on_stopped, finished_at=timezone.now())


def reset_race(race: Race) -> Race:
    with transaction.atomic():
        # Lock first: the relay's store_frame takes the same lock, so a frame of the
        # ending race is either stored before the reset or refused after it.
        Race.objects.select_for_update().filter(pk=race.pk).first()
        race.positions.all().delete()
        live_store.clear(race)
        return _change(race, Status.DRAFT, on_reset, started_at=None, finished_at=None)
