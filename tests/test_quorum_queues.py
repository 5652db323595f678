"""Queue types on a real broker: quorum relay and simulation queues, the upgrade path.

Against the shared RabbitMQ (unique names; every object this module declares is deleted).
What RabbitMQ 4.3 refuses (global QoS, transient non-exclusive queues) is checked on a
running stack in tests/test_faults.py; a node failure on a cluster in
tests/test_cluster_faults.py.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import amqp
import pytest
from django.test import override_settings
from kombu import Connection, Queue

from races import wire
from races.relay import broker
from races.simulation import tasks
from tests.factories import make_race, unique_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def amqp_objects(rabbitmq_url):
    """Queue and exchange names to delete at the end, pass or fail."""
    names: dict[str, list[str]] = {"queues": [], "exchanges": []}
    yield names
    with Connection(rabbitmq_url) as conn:
        for kind, delete in (("queues", "queue_delete"), ("exchanges", "exchange_delete")):
            for name in names[kind]:
                channel = conn.channel()
                try:
                    getattr(channel, delete)(name)
                except amqp.exceptions.ChannelError:
                    pass


def is_quorum(conn: Connection, name: str, arguments: dict) -> bool:
    """Asked of the broker: it refuses (406) to redeclare a queue with another type."""
    assert arguments.get("x-queue-type") == "quorum"
    try:
        conn.channel().queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
        return True
    except amqp.exceptions.PreconditionFailed:
        return False


def race_on(url: str):
    return make_race(unique_name("Quorum"), athletes=1)


def test_a_new_race_gets_a_quorum_relay_queue_with_a_dead_letter_route(rabbitmq_url, amqp_objects):
    race = race_on(rabbitmq_url)
    amqp_objects["queues"].append(wire.relay_queue_name(race.slug))
    amqp_objects["exchanges"].append(wire.exchange_name(race.slug))
    with override_settings(AMQP_URL=rabbitmq_url):
        broker.declare_race(race)
    with Connection(rabbitmq_url) as conn:
        assert is_quorum(conn, wire.relay_queue_name(race.slug), broker.RELAY_QUEUE_ARGUMENTS)
        assert is_quorum(conn, wire.DEAD_LETTER_QUEUE, broker.DEAD_LETTER_ARGUMENTS)
    assert broker.RELAY_QUEUE_ARGUMENTS["x-single-active-consumer"] is True
    assert broker.RELAY_QUEUE_ARGUMENTS["x-dead-letter-exchange"] == wire.DEAD_LETTER_EXCHANGE


def test_a_race_started_before_the_upgrade_keeps_its_classic_queue_and_its_messages(
    rabbitmq_url, amqp_objects
):
    race = race_on(rabbitmq_url)
    name = wire.relay_queue_name(race.slug)
    amqp_objects["queues"].append(name)
    amqp_objects["exchanges"].append(wire.exchange_name(race.slug))
    with Connection(rabbitmq_url) as conn:
        # What the previous release declared, with a position already waiting in it.
        old = broker.relay_queue(race.slug, classic=True)(conn.channel())
        old.declare()
        conn.Producer().publish(
            json.dumps({"seq": 1}), exchange=broker.race_exchange(race.slug), delivery_mode=2
        )
    with override_settings(AMQP_URL=rabbitmq_url):
        broker.declare_race(race)  # a 406 inside, handled: the old queue is kept
    with Connection(rabbitmq_url) as conn:
        channel, queue = broker.declare_relay_queue(conn, race.slug)
        assert queue.queue_arguments == broker.CLASSIC_RELAY_QUEUE_ARGUMENTS
        assert channel.queue_declare(name, passive=True).message_count == 1
        assert not is_quorum(conn, name, broker.RELAY_QUEUE_ARGUMENTS)
        message = Queue(name)(conn.channel()).get(no_ack=True)
        assert json.loads(message.body) == {"seq": 1}


def test_an_empty_quorum_relay_queue_is_deleted_and_a_full_one_kept(rabbitmq_url, amqp_objects):
    race = race_on(rabbitmq_url)
    amqp_objects["queues"].append(wire.relay_queue_name(race.slug))
    amqp_objects["exchanges"].append(wire.exchange_name(race.slug))
    with Connection(rabbitmq_url, transport_options=broker.CONFIRMED) as conn:
        channel, _ = broker.declare_relay_queue(conn, race.slug)
        conn.Producer().publish("{}", exchange=broker.race_exchange(race.slug), delivery_mode=2)
        assert broker.delete_relay_queue(channel, race.slug) is False  # a position waits
        channel.queue_purge(wire.relay_queue_name(race.slug))
        assert broker.delete_relay_queue(channel, race.slug) is True
        assert conn.connected  # no 540 NOT_IMPLEMENTED (if-empty) closed the connection


def test_the_simulation_queue_is_quorum_and_not_the_old_classic_name(rabbitmq_url, amqp_objects):
    name = f"simulation-{uuid.uuid4().hex[:8]}"
    amqp_objects["queues"].append(name)
    amqp_objects["exchanges"].append(name)
    race = race_on(rabbitmq_url)
    with override_settings(AMQP_URL=rabbitmq_url, SIMULATION_QUEUE=name):
        tasks.enqueue_segment(race.pk, race.generation)
    with Connection(rabbitmq_url) as conn:
        assert is_quorum(conn, name, broker.SIMULATION_QUEUE_ARGUMENTS)
        assert conn.channel().queue_declare(name, passive=True).message_count == 1
    assert wire.SIMULATION_QUEUE != "simulation"  # the classic queue of older releases


def test_a_poison_message_is_dead_lettered_after_the_delivery_limit(rabbitmq_url, amqp_objects):
    """A message the relay takes and puts back again and again (it crashed on it each
    time) ends in raceweb.dead-letter instead of looping for ever."""
    race = race_on(rabbitmq_url)
    name = wire.relay_queue_name(race.slug)
    amqp_objects["queues"].append(name)
    amqp_objects["exchanges"].append(wire.exchange_name(race.slug))
    marker = uuid.uuid4().hex
    poison = json.dumps({"poison": marker})
    with Connection(rabbitmq_url, transport_options=broker.CONFIRMED) as conn:
        channel, _ = broker.declare_relay_queue(conn, race.slug)
        conn.Producer().publish(poison, exchange=broker.race_exchange(race.slug), delivery_mode=2)
        deliveries: list[int] = []

        def crash_on_it(message) -> None:  # as a relay that dies on it: back it goes
            deliveries.append(1)
            channel.basic_reject(message.delivery_tag, requeue=True)

        channel.basic_qos(0, 1, False)
        channel.basic_consume(name, callback=crash_on_it)
        with contextlib.suppress(TimeoutError):
            while len(deliveries) <= broker.RELAY_DELIVERY_LIMIT + 1:
                conn.drain_events(timeout=2)
        assert len(deliveries) == broker.RELAY_DELIVERY_LIMIT + 1
        held = []  # everything in the shared dead-letter queue, unacked until the end
        while (message := channel.basic_get(wire.DEAD_LETTER_QUEUE)) is not None:
            held.append(message)
        ours = [message for message in held if marker in str(message.body)]
        for message in held:
            if message in ours:
                channel.basic_ack(message.delivery_tag)
            else:  # another run's: left for the operator
                channel.basic_reject(message.delivery_tag, requeue=True)
        assert len(ours) == 1
