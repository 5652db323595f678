"""A race's RabbitMQ objects and the relay's control notices, from synchronous code (kombu).

- `race-<slug>`: durable fanout exchange; every position of the race is published here.
- `relay.race-<slug>`: the relay's durable queue, bound to it, consumed with
  `x-single-active-consumer` (a second relay is a hot standby, never a double).
- `raceweb.control`: durable fanout of race status notices (`{"slug", "status",
  "generation"}`); every relay binds a private queue to it, so Start reaches the relays
  at once without anyone polling the management API.

`declare_race` runs in `lifecycle.on_started` BEFORE the simulation is enqueued (the
hooks run in list order, see `races.deployment.DISTRIBUTED`), so no position is ever published into
an exchange the relay's queue is not bound to. Admin actions, Celery tasks and commands
use these functions; the channel layer is never used outside an event loop.

Distributed mode only (`races.deployment.DISTRIBUTED` registers these hooks); in embedded
mode there is no broker and `races.relay.embedded` takes the notices.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from kombu import Connection, Exchange, Queue

from races import wire

RELAY_QUEUE_ARGUMENTS = {"x-single-active-consumer": True}
logger = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5


def race_exchange(slug: str) -> Exchange:
    return Exchange(wire.exchange_name(slug), type="fanout", durable=True)


def relay_queue(slug: str) -> Queue:
    return Queue(
        wire.relay_queue_name(slug),
        exchange=race_exchange(slug),
        durable=True,
        queue_arguments=RELAY_QUEUE_ARGUMENTS,
    )


def control_exchange() -> Exchange:
    """`raceweb.control` unless RELAY_CONTROL_EXCHANGE says otherwise (tests isolate with it)."""
    return Exchange(settings.RELAY_CONTROL_EXCHANGE, type="fanout", durable=True)


def connection() -> Connection:
    return Connection(settings.AMQP_URL, connect_timeout=CONNECT_TIMEOUT_S)


def declare_race(race) -> None:
    """Declare the race's exchange and the relay's queue, bound (idempotent)."""
    with connection() as conn:
        relay_queue(race.slug)(conn.default_channel).declare()


def notify_relay(race) -> None:
    """Tell every relay that `race` changed status (start, finish, stop, reset)."""
    _publish_control(wire.control_notice(race.slug, race.status, race.generation))


def send_decision(decision) -> None:
    """A race-control decision (`races.models.AthleteDecision`) to every relay: on the
    control exchange, which every relay binds whatever the race's status (see wire.py)."""
    _publish_control(decision.message())


def _publish_control(notice: dict) -> None:
    with connection() as conn:
        producer = conn.Producer(serializer="json")
        producer.publish(
            json.dumps(notice),
            exchange=control_exchange(),
            declare=[control_exchange()],
            content_type="application/json",
            retry=True,
            retry_policy={"max_retries": 3},
        )


def delete_race(race) -> None:
    """Delete a deleted race's relay queue, then its exchange (`lifecycle.on_deleted`).

    The delete has already committed: a broker that is away must not undo or break it, so
    a failure is logged and the objects are left for the operator to remove.
    """
    try:
        with connection() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            relay_queue(race.slug)(channel).delete()
            race_exchange(race.slug)(channel).delete()
    except Exception:  # the race is gone from the database whatever the broker says
        logger.warning(
            "race %r deleted, but its exchange %s and queue %s could not be removed",
            race.slug,
            wire.exchange_name(race.slug),
            wire.relay_queue_name(race.slug),
            exc_info=True,
        )
