"""Race control's alerts inside the relay: one `RaceWatch` per race the relay runs.

The relay sees every frame of a race, so it is where an alert episode is counted once
(`raceweb_race_alerts_total`). The watch observes each frame's athletes; about once a
second (`RACE_ALERT_CHECK_EVERY_S`) the alerts in force are computed at the race's "now"
and, when they changed, stored in `RaceAlerts` for race control's pages (any web process);
so are a tracked race's devices (source, battery, newest fix), which only race control
shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from races.operations import metrics
from races.organizer.race_alerts import RaceWatch, Thresholds, race_now
from races.relay.live_store import LoadedRace

logger = logging.getLogger(__name__)


@dataclass
class AlertFeed:
    race_id: int
    watch: RaceWatch
    started_at: object
    time_compression: float
    stored: list = field(default_factory=list)
    stored_devices: dict = field(default_factory=dict)
    checked_at: float = 0.0


def build(loaded: LoadedRace) -> AlertFeed:
    """An alert watch for a loaded race (in the relay's database thread)."""
    from races.models import Race, RaceAlerts

    race = Race.objects.select_related("course").get(pk=loaded.race_id)
    course = getattr(race, "course", None)
    checkpoints = [(cp.name, cp.distance_m) for cp in race.checkpoints.filter(kind="checkpoint")]
    state = loaded.state
    watch = RaceWatch(
        Thresholds.from_settings(),
        course.points if course else None,
        checkpoints,
        on_episode=lambda kind: metrics.RACE_ALERTS.labels(kind=kind).inc(),
        snap_behind=state.course.snap if state.course is not None else None,
    )
    watch.observe(state.leaderboard())
    feed = AlertFeed(loaded.race_id, watch, race.started_at, race.clock_compression)
    stored = RaceAlerts.objects.filter(race=race).values_list("devices", flat=True).first()
    feed.stored_devices = dict(stored or {})  # a restarted relay keeps what it had said
    return feed


def check(feed: AlertFeed, latest) -> list[dict] | None:
    """The alerts in force now, or None when they are what is stored already."""
    now = race_now(feed.started_at, timezone.now(), feed.time_compression, latest)
    if now is None:
        return None
    alerts = [alert.as_dict() for alert in feed.watch.check(now)]
    if alerts == feed.stored:
        return None
    feed.stored = alerts
    return alerts


def devices_changed(feed: AlertFeed, tracker) -> dict | None:
    """A tracked race's devices (`tracker_fixes.TrackerIntake`), or None when unchanged."""
    if tracker is None:
        return None
    # Merged into what is stored: a state reloaded after a failover knows only the devices
    # heard of since, and race control keeps showing the others' last word.
    devices = {
        **feed.stored_devices,
        **{str(athlete): device.as_dict() for athlete, device in tracker.devices.items()},
    }
    if devices == feed.stored_devices:
        return None
    feed.stored_devices = devices
    return devices


def store(race_id: int, alerts: list[dict] | None, devices: dict | None = None) -> None:
    from races.models import RaceAlerts

    values = {"alerts": alerts, "devices": devices}
    defaults = {key: value for key, value in values.items() if value is not None}
    RaceAlerts.objects.update_or_create(race_id=race_id, defaults=defaults)


def check_every_s() -> float:
    return settings.RACE_ALERT_CHECK_EVERY_S


async def check_feeds(feeds: Iterable[Any], in_db: Callable[..., Awaitable[Any]]) -> None:
    """Check the alerts of each running race feed (`RelayCore.feeds`) that is due; `in_db`
    runs a function in the relay's database thread. A failure is logged, never raised:
    alerts must not stop the frames."""
    now = time.monotonic()
    for feed in feeds:
        loaded = feed.loaded
        due = now - feed.alerts_checked >= check_every_s()
        if loaded is None or loaded.status != "running" or not due:
            continue
        feed.alerts_checked = now
        try:
            if feed.alerts is None or feed.alerts.race_id != loaded.race_id:
                feed.alerts = await in_db(build, loaded)
            alerts = check(feed.alerts, loaded.state.latest_time)
            devices = devices_changed(feed.alerts, loaded.tracker)
            if alerts is not None or devices is not None:
                await in_db(store, loaded.race_id, alerts, devices)
        except Exception:
            logger.exception("race %s: alert check failed", feed.slug)
