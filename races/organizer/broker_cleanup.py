"""A deleted race's broker objects go with it: its `race-<slug>` exchange and relay queue.

Registered in `lifecycle.on_deleted` (see `RacesConfig.ready`), so it runs after the
delete commits. The broker being away must not undo or break a delete the database has
already done: a failure is logged, and the objects are left for the operator to remove.
"""

import logging

from django.conf import settings

from races.models import Race
from races.relay import broker

logger = logging.getLogger(__name__)


def delete_race_objects(race: Race) -> None:
    """Delete the race's relay queue, then its exchange (no broker in embedded mode)."""
    if settings.EMBEDDED:
        return
    try:
        with broker.connection() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            broker.relay_queue(race.slug)(channel).delete()
            broker.race_exchange(race.slug)(channel).delete()
    except Exception:  # the race is gone from the database whatever the broker says
        logger.warning(
            "race %r deleted, but its exchange %s and queue %s could not be removed",
            race.slug, race.exchange_name, race.queue_name, exc_info=True,
        )  # fmt: skip
