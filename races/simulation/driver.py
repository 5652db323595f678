"""Runs a race's simulation from the database: who publishes it, and up to which tick.

The same ``run_segment`` drives a race in a Celery segment task and in the embedded
runner. Ownership and progress live on the race row:

- ``sim_owner`` names the one segment that may publish. A segment *claims* the race when
  the owner is its predecessor (or itself, when a lost worker's task is delivered again);
  any other copy, and any segment of an older ``generation``, is refused.
- Every tick starts by checking that the race is still running, of the same generation,
  owned by this segment; if not (Stop, reset, a newer owner) nothing more is published.
  About once a second the same condition guards an UPDATE that records ``sim_tick`` and
  refreshes ``sim_heartbeat``, which the watchdog reads.
- Positions are a pure function of race time, so whoever carries on publishes from
  ``sim_tick`` to the race clock in one step and goes on from there.
- Once every athlete's last event is published (``sim_tick`` at the simulation's last
  tick) the chain just ends. The simulation never finishes a race: only the relay knows
  that every event arrived, so it decides (``races.relay.core``). The watchdog leaves
  such a race alone (``stale_races`` skips it) and says that it waits for the relay.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from races.models import Checkpoint, Race
from races.operations import metrics
from simulator.clock import race_seconds, tick_at, wall_time_of
from simulator.geometry import Course
from simulator.pacing import AthleteSpec
from simulator.publishers import Publisher
from simulator.race import CheckpointSpec, RaceSimulation

logger = logging.getLogger(__name__)

# Even when ticks are far apart, check for Stop this often; refresh the heartbeat this often.
MAX_IDLE_S = 1.0
HEARTBEAT_S = 1.0
# A worker that fell behind publishes the ticks it missed, every one, in batches of this
# many (a batch is computed and confirmed at once; 1,000 athletes x 50 ticks ~ 50,000
# events, a few MB): late rather than never, and never a hole in the stored history.
CATCH_UP_BATCH_TICKS = 50
_CACHE_SIZE = 8
_cache: OrderedDict[tuple[int, int], RaceSimulation] = OrderedDict()


class Outcome(enum.Enum):
    CONTINUE = "continue"  # the segment's time is up; the race goes on in a successor
    COMPLETE = "complete"  # every athlete's last event is published; the relay finishes it
    STOPPED = "stopped"  # stopped, reset, restarted, or another segment owns it
    REFUSED = "refused"  # could not claim the race at all


def simulation_for(race: Race) -> RaceSimulation:
    """The race's simulation, built once per process and generation."""
    key = (race.pk, race.generation)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    checkpoints = list(race.checkpoints.all())
    finish = next((c for c in checkpoints if c.kind == Checkpoint.Kind.FINISH), None)
    simulation = RaceSimulation(
        slug=race.slug,
        course=Course(race.course.points),
        checkpoints=[
            CheckpointSpec(c.name, c.distance_m)
            for c in checkpoints
            if c.kind == Checkpoint.Kind.CHECKPOINT
        ],
        athletes=[
            AthleteSpec(a.pk, a.bib, a.name, a.gender, a.category, a.flat_pace_s_per_km)
            for a in race.athletes.order_by("pk")
        ],
        seed=race.seed,
        tick_seconds=race.tick_seconds,
        started_at=race.started_at,
        finish_name=finish.name if finish else "Finish",
    )
    _cache[key] = simulation
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return simulation


def claim(race_id: int, generation: int, owner: str, predecessor: str) -> bool:
    """Take over publishing a running race from ``predecessor`` (or keep it); never a
    tracked race (a segment queued before its tracking was known publishes nothing)."""
    return bool(
        Race.objects.filter(
            pk=race_id,
            generation=generation,
            status=Race.Status.RUNNING,
            tracking=Race.Tracking.SIMULATED,
            sim_owner__in=[predecessor, owner],
        ).update(sim_owner=owner, sim_heartbeat=timezone.now())
    )


def still_mine(race_id: int, generation: int, owner: str) -> bool:
    """Whether the race is still running, of this generation, and ours to publish."""
    return Race.objects.filter(
        pk=race_id, generation=generation, status=Race.Status.RUNNING, sim_owner=owner
    ).exists()


def record_progress(race_id: int, generation: int, owner: str, tick: int) -> bool:
    """Record the last published tick and the heartbeat; False once the race is not ours."""
    return bool(
        Race.objects.filter(
            pk=race_id, generation=generation, status=Race.Status.RUNNING, sim_owner=owner
        ).update(sim_tick=tick, sim_heartbeat=timezone.now())
    )


def published_everything(race: Race) -> bool:
    """Whether every athlete's last event is published (the chain has ended for good)."""
    return race.sim_tick >= simulation_for(race).last_tick


def quiet_races(stale_after_s: float, now: datetime | None = None) -> list[Race]:
    """Running races whose simulation has not reported for ``stale_after_s`` seconds
    (tracked races have no simulation: never quiet, never restarted)."""
    before = (now or timezone.now()) - timedelta(seconds=stale_after_s)
    return list(
        Race.objects.select_related("course")
        .filter(status=Race.Status.RUNNING, tracking=Race.Tracking.SIMULATED)
        .filter(Q(sim_heartbeat__lt=before) | Q(sim_heartbeat__isnull=True, started_at__lt=before))
    )


def stale_races(stale_after_s: float, now: datetime | None = None) -> list[Race]:
    """Quiet races whose simulation still has events to publish: their chain died.

    A race whose simulation published everything is quiet too, but waits for the relay
    to finish it; running its simulation again would publish nothing new.
    """
    return [r for r in quiet_races(stale_after_s, now) if not published_everything(r)]


def run_segment(
    race_id: int,
    generation: int,
    *,
    owner: str,
    predecessor: str,
    publisher: Publisher,
    budget_s: float,
    sleep: Callable[[float], object] = time.sleep,
    interrupted: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Publish the race's ticks as the race clock reaches them, for about ``budget_s``.

    ``interrupted`` ends the segment early (as if its time were up), e.g. at shutdown.
    """
    if not claim(race_id, generation, owner, predecessor):
        return Outcome.REFUSED
    race = Race.objects.select_related("course").get(pk=race_id)
    simulation = simulation_for(race)
    published = race.sim_tick
    if published >= simulation.last_tick:
        return Outcome.COMPLETE  # delivered again after the last tick: nothing left to do
    stop_at = time.monotonic() + budget_s
    next_heartbeat = 0.0
    while True:
        # Every tick reads whether to go on; the heartbeat is written about once a second.
        if time.monotonic() >= next_heartbeat:
            mine = record_progress(race_id, generation, owner, published)
            next_heartbeat = time.monotonic() + HEARTBEAT_S
        else:
            mine = still_mine(race_id, generation, owner)
        if not mine:
            return Outcome.STOPPED
        clock_s = race_seconds(race.started_at, timezone.now(), race.time_compression)
        due = min(tick_at(clock_s, race.tick_seconds), simulation.last_tick)
        if due > published:
            published = _publish_ticks(
                race, simulation, publisher, published, due,
                still=lambda: still_mine(race_id, generation, owner),
            )  # fmt: skip
            if published < due:
                return Outcome.STOPPED  # stopped or taken over while catching up
            if published >= simulation.last_tick:
                return _complete(race, generation, owner, published)
        remaining = stop_at - time.monotonic()
        if remaining <= 0 or interrupted():
            # Record the last tick, so the successor starts after it rather than repeat it.
            mine = record_progress(race_id, generation, owner, published)
            return Outcome.CONTINUE if mine else Outcome.STOPPED
        next_tick = wall_time_of(
            race.started_at, (published + 1) * race.tick_seconds, race.time_compression
        )
        wait = (next_tick - timezone.now()).total_seconds()
        sleep(min(max(wait, 0.0), MAX_IDLE_S, remaining))


def _publish_ticks(
    race: Race,
    simulation: RaceSimulation,
    publisher: Publisher,
    after: int,
    upto: int,
    still: Callable[[], bool],
) -> int:
    """Publish ticks ``(after, upto]`` with the running positions of each, oldest first.

    Every batch goes out at once, without waiting for the clock (they are all due), so a
    late worker is back on the race clock as soon as it can publish; ticks other than the
    one due now are counted as late (``raceweb_worker_late_ticks_total``). Between two
    batches it checks that the race is still its to publish (``still``); returns the last
    tick published.
    """
    if upto - after > 1:
        metrics.ticks_published_late(race.slug, upto - after - 1)
    for start in range(after, upto, CATCH_UP_BATCH_TICKS):
        if start > after and not still():
            return start
        end = min(start + CATCH_UP_BATCH_TICKS, upto)
        began = time.monotonic()
        events = simulation.events(start, end, every_tick=True)
        computed = time.monotonic()
        publisher.publish(race.exchange_name, events)
        done = time.monotonic()
        metrics.WORKER_PUBLISH_CONFIRM_SECONDS.observe(done - computed)
        metrics.positions_published(race.slug, len(events))
        metrics.tick_finished(done - began, race.tick_seconds / race.time_compression)
    return upto


def _complete(race: Race, generation: int, owner: str, tick: int) -> Outcome:
    """The last tick is published: record it and end the chain, status untouched."""
    if not record_progress(race.pk, generation, owner, tick):
        return Outcome.STOPPED
    logger.info("race %s: every athlete's last event published (tick %d)", race.slug, tick)
    metrics.forget_race(race.slug)  # this process publishes nothing more for it
    return Outcome.COMPLETE
