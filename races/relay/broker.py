"""A race's RabbitMQ objects and the relay's control notices, from synchronous code (kombu).

- `race-<slug>`: durable fanout exchange; every position of the race is published here.
- `relay.race-<slug>`: the relay's queue, bound to it: a quorum queue (replicated on a
  cluster: a node that dies loses nothing), consumed with `x-single-active-consumer` (a
  second relay is a hot standby, never a double), with a delivery limit and a
  dead-letter exchange (a message that crashes the relay again and again ends in
  `raceweb.dead-letter` instead of looping). A race started before quorum queues has a
  classic queue of that name; declaring it as quorum fails (406 PRECONDITION_FAILED),
  so `declare_relay_queue` then keeps the classic one (README, "Upgrading").
- The simulation queue (`simulation_queue`, settings.SIMULATION_QUEUE): quorum too, same
  delivery limit and dead-lettering; Celery sees the quorum type and uses per-consumer
  prefetch (no global QoS, which quorum queues and RabbitMQ 4.3 refuse).
- Classic queues remain only where a process's own queue must die with it: exclusive
  and auto-delete (the relay's control queue, channels-rabbitmq's, Celery's pidbox).
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
from typing import Any

from amqp.exceptions import PreconditionFailed
from django.conf import settings
from kombu import Connection, Exchange, Queue

from races import wire

# A delivery that comes back this often (the relay crashed on it each time) is dead-
# lettered. A relay crash returns a whole prefetch window, so the limit must stay well
# above the crashes a healthy race can see (a node failure does not count on 4.x).
RELAY_DELIVERY_LIMIT = 20
SIMULATION_DELIVERY_LIMIT = 10
QUORUM = {"x-queue-type": "quorum", "x-dead-letter-exchange": wire.DEAD_LETTER_EXCHANGE}
RELAY_QUEUE_ARGUMENTS = {
    **QUORUM,
    "x-delivery-limit": RELAY_DELIVERY_LIMIT,
    "x-single-active-consumer": True,
}
SIMULATION_QUEUE_ARGUMENTS = {**QUORUM, "x-delivery-limit": SIMULATION_DELIVERY_LIMIT}
DEAD_LETTER_ARGUMENTS = {
    "x-queue-type": "quorum",
    "x-max-length": 100_000,
    "x-overflow": "drop-head",
    "x-message-ttl": 7 * 24 * 3600 * 1000,  # a week to look at them
}
# A relay queue declared before quorum queues (kept for races started before the upgrade).
CLASSIC_RELAY_QUEUE_ARGUMENTS = {"x-single-active-consumer": True}
# Every publish waits for the broker's confirm (kombu's py-amqp transport option).
CONFIRMED = {"confirm_publish": True}
logger = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5


def race_exchange(slug: str) -> Exchange:
    return Exchange(wire.exchange_name(slug), type="fanout", durable=True)


def relay_queue(slug: str, *, classic: bool = False) -> Queue:
    return Queue(
        wire.relay_queue_name(slug),
        exchange=race_exchange(slug),
        durable=True,
        queue_arguments=CLASSIC_RELAY_QUEUE_ARGUMENTS if classic else RELAY_QUEUE_ARGUMENTS,
    )


def simulation_queue(name: str) -> Queue:
    """Celery's simulation queue (a topic exchange of its name: Celery 5.5+ binds quorum
    queues to its native delayed delivery, which does not work with direct exchanges)."""
    return Queue(
        name,
        Exchange(name, type="topic", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments=SIMULATION_QUEUE_ARGUMENTS,
    )


def dead_letter_queue() -> Queue:
    """Where poison messages are kept for the operator. Bounded: simulation segments that
    expire unclaimed (by design, see races.simulation.tasks) are dead-lettered here too."""
    exchange = Exchange(wire.DEAD_LETTER_EXCHANGE, type="fanout", durable=True)
    return Queue(
        wire.DEAD_LETTER_QUEUE, exchange, durable=True, queue_arguments=DEAD_LETTER_ARGUMENTS
    )


def declare_relay_queue(conn: Connection, slug: str) -> tuple[Any, Queue]:
    """Declare the race's relay queue (and the dead-letter queue) on a new channel.

    Returns the channel and the queue as declared: quorum, or the classic queue of a race
    started before the upgrade. RabbitMQ refuses to redeclare a queue with another type
    (406, which closes the channel): then the classic one is declared as it is and used.
    """
    channel = conn.channel()
    try:
        dead_letter_queue()(channel).declare()
        queue = relay_queue(slug)(channel)
        queue.declare()
        return channel, queue
    except PreconditionFailed as error:
        logger.info("relay queue of %s is a classic queue (%s); keeping it", slug, error)
    channel = conn.channel()
    queue = relay_queue(slug, classic=True)(channel)
    queue.declare()
    return channel, queue


def delete_relay_queue(channel: Any, slug: str) -> bool:
    """Delete the race's relay queue if it is empty; True if it was deleted.

    Quorum queues refuse `queue.delete` with if-empty (540 NOT_IMPLEMENTED, which closes
    the whole connection), so the queue's depth is read first (a passive declare)."""
    name = wire.relay_queue_name(slug)
    if channel.queue_declare(name, passive=True).message_count:
        return False
    channel.queue_delete(name)
    return True


def control_exchange() -> Exchange:
    """`raceweb.control` unless RELAY_CONTROL_EXCHANGE says otherwise (tests isolate with it)."""
    return Exchange(settings.RELAY_CONTROL_EXCHANGE, type="fanout", durable=True)


def connection() -> Connection:
    """A connection whose publishes wait for the broker's confirm."""
    return Connection(
        settings.AMQP_URL, connect_timeout=CONNECT_TIMEOUT_S, transport_options=CONFIRMED
    )


def declare_race(race) -> None:
    """Declare the race's exchange and the relay's queue, bound (idempotent)."""
    with connection() as conn:
        declare_relay_queue(conn, race.slug)


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
