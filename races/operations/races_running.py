"""`raceweb_races_running`: how many races run, read from the database at scrape time.

Only the web processes export it (`raceweb/asgi.py` calls `register_web_collectors`), so
every web process reports the same numbers (use max() across processes).
"""

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class RacesRunningCollector(Collector):
    """`raceweb_races_running` and one `raceweb_race_running{race}` per running race.

    Read from the database when /metrics is scraped, so every web process reports the
    same numbers (use max() across processes). Bounded by the races running at once.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        slugs = running_race_slugs()
        if slugs is None:
            return
        total = GaugeMetricFamily("raceweb_races_running", "Races whose status is running.")
        total.add_metric([], len(slugs))
        yield total
        per_race = GaugeMetricFamily(
            "raceweb_race_running", "1 for each race whose status is running.", labels=["race"]
        )
        for slug in slugs:
            per_race.add_metric([slug], 1)
        yield per_race

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing without collecting keeps registration free of database queries.
        yield GaugeMetricFamily("raceweb_races_running", "")
        yield GaugeMetricFamily("raceweb_race_running", "", labels=["race"])


def running_race_slugs() -> list[str] | None:
    """Slugs of the running races, or None when the database cannot answer now."""
    # Imported here so that this module loads before Django's apps are ready.
    from races.models import Race

    try:
        return list(Race.objects.filter(status=Race.Status.RUNNING).values_list("slug", flat=True))
    except Exception as error:  # a scrape must never fail because the database does
        logger.warning("raceweb_races_running left out: database query failed: %s", error)
        return None


_races_running_collector = RacesRunningCollector()


def register_web_collectors(registry=REGISTRY) -> None:
    """Add the collectors only the web process exports (called from raceweb/asgi.py)."""
    with contextlib.suppress(ValueError):  # already registered: importing twice is fine
        registry.register(_races_running_collector)
