"""From a device's fix to the race's fanout: token, rate, race, checks, publish, count.

Every endpoint (races.trackers.views) reads its app's format into `fixes.Fix` objects and
hands them here. The answers mean, for the app:

- published (200): the broker confirmed the event into the race's fanout;
- ignored (200, with a reason): the fix is fine but there is nothing to do with it (race
  not running, simulated, before the start, in the future, poor accuracy). Answered 200
  because every app holds its whole queue and retries a refused fix forever;
- refused (4xx with a reason): unknown token (401), revoked (403), rate limited (429);
  503 when the broker did not confirm (the app keeps the fix and sends it again).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from races import deployment, wire
from races.models import Athlete, DeviceToken, Race
from races.operations import tracker_metrics
from races.spectators.socket_limits import MessageBudget
from races.trackers.fixes import Fix
from simulator.clock import iso_z
from simulator.publishers import PublishError

logger = logging.getLogger(__name__)

FUTURE_TOLERANCE = timedelta(minutes=1)
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # secrets.token_urlsafe's alphabet
MAX_BUDGETS = 10_000  # tokens whose rate this process remembers (least recent dropped)


class Refused(Exception):
    """The request is refused: `status` and `reason` (a metrics label) and a message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass
class Outcome:
    """What happened to the fixes of one request."""

    published: int = 0
    ignored: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict:
        answer: dict = {"published": self.published}
        if self.ignored:
            answer["ignored"] = self.ignored
            answer["reason"] = IGNORED_MESSAGES[next(iter(self.ignored))]
        return answer


IGNORED_MESSAGES = {
    "race_not_running": "the race is not running: nothing is published",
    "simulated_race": "the race is simulated: trackers do not move its athletes",
    "before_start": "the fix is from before the race's start",
    "in_future": "the fix is more than a minute in the future: check the device clock",
    "poor_accuracy": "the fix is less accurate than the race accepts",
    "not_a_location": "not a location message",
}


@dataclass(frozen=True)
class TrackedAthlete:
    """The athlete a token stands for, as an event needs it (wire.EventAthlete)."""

    name: str
    gender: str
    bib: str
    athlete_id: int


def authenticate(token: str, source: str) -> DeviceToken:
    """The token's row with its athlete and race, or Refused (401 unknown, 403 revoked)."""
    device = (
        DeviceToken.objects.select_related("athlete__race").filter(token=token).first()
        if TOKEN_SHAPE.fullmatch(token)
        else None  # not one of ours (and a NUL byte must never reach the database)
    )
    if device is None:
        tracker_metrics.refused(source, "unknown_token")
        raise Refused(401, "unknown_token", "unknown device token: copy it again from the admin")
    if device.revoked:
        tracker_metrics.refused(source, "revoked_token")
        raise Refused(
            403, "revoked_token", "the organizer revoked this device token; ask for a new one"
        )
    return device


class _Budgets:
    """One token bucket per device token, in this process (like the sockets' limits)."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, MessageBudget] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, token: str, count: int) -> bool:
        rate = settings.TRACKER_FIXES_PER_SECOND
        if not rate:
            return True
        with self._lock:
            bucket = self._buckets.get(token)
            if bucket is None:
                bucket = self._buckets[token] = MessageBudget(rate, settings.TRACKER_FIX_BURST)
                while len(self._buckets) > MAX_BUDGETS:
                    self._buckets.popitem(last=False)
            self._buckets.move_to_end(token)
            return all(bucket.take() for _ in range(count))

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


budgets = _Budgets()


def check_rate(token: str, source: str, fixes: int = 1) -> None:
    if not budgets.take(token, fixes):
        tracker_metrics.refused(source, "rate_limited")
        raise Refused(429, "rate_limited", "too many fixes from this device: slow down, retry")


def ingest(source: str, batch: Sequence[Fix]) -> Outcome:
    """Check and publish the fixes of one request (all of one token), or raise Refused."""
    outcome = Outcome()
    if not batch:
        return outcome
    device = authenticate(batch[0].token, source)
    check_rate(device.token, source, len(batch))
    athlete: Athlete = device.athlete
    race: Race = athlete.race
    events = []
    for fix in batch:
        if fix.token != device.token:
            raise Refused(400, "malformed", "one request carries one device's fixes")
        reason = ignore_reason(race, fix)
        if reason:
            tracker_metrics.ignored(source, reason)
            outcome.ignored[reason] = outcome.ignored.get(reason, 0) + 1
            continue
        events.append(event_of(athlete, race, source, fix))
    if events:
        publish(race, events, source)
        outcome.published = len(events)
    return outcome


def ignore_reason(race: Race, fix: Fix, now=None) -> str:
    """Why a well-formed fix is not published ("" when it is)."""
    if race.tracking != Race.Tracking.TRACKED:
        return "simulated_race"
    if race.status != Race.Status.RUNNING:
        return "race_not_running"
    if race.started_at is not None and fix.time < race.started_at:
        return "before_start"
    if fix.time > (now or timezone.now()) + FUTURE_TOLERANCE:
        return "in_future"
    if fix.accuracy_m is not None and fix.accuracy_m > settings.TRACKER_MAX_ACCURACY_M:
        return "poor_accuracy"
    return ""


def event_of(athlete: Athlete, race: Race, source: str, fix: Fix) -> dict:
    return wire.build_tracker_event(
        athlete=TrackedAthlete(athlete.name, athlete.gender, athlete.bib, athlete.pk),
        slug=race.slug,
        source=source,
        time=iso_z(fix.time),
        latitude=fix.latitude,
        longitude=fix.longitude,
        elevation=fix.elevation,
        speed_mps=fix.speed_mps,
        accuracy_m=fix.accuracy_m,
        battery_pct=fix.battery_pct,
    )


def publish(race: Race, events: list[dict], source: str) -> None:
    """Into the race's fanout, confirmed (embedded mode: the in-process relay's door)."""
    try:
        deployment.current().tracker_publisher().publish(race.exchange_name, events)
    except (PublishError, OSError) as error:
        logger.warning("tracker fixes for %s not published: %s", race.slug, error)
        tracker_metrics.refused(source, "unavailable")
        raise Refused(503, "unavailable", "the race's broker did not confirm: retry") from error
    tracker_metrics.accepted(source, len(events))
