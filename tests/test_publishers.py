"""Publishers: the AMQP fanout publisher against the real RabbitMQ, and the in-process one."""

import json
import os
import socket
import uuid

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection, Exchange, Queue

from harness.ports import free_port
from simulator import publishers
from simulator.publishers import (
    AmqpPublisher,
    CallbackPublisher,
    PublishError,
    shared_amqp_publisher,
)


def events(count: int, start: int = 0) -> list[dict]:
    return [{"event": "running", "seq": start + i, "athlete": f"Ä {i}"} for i in range(count)]


@pytest.fixture
def fanout(rabbitmq_url):
    """A fresh exchange name with a queue bound once the publisher has declared it."""
    name = f"race-test-publisher-{uuid.uuid4().hex[:8]}"
    conn = Connection(rabbitmq_url)
    queue = Queue(f"test.{name}", Exchange(name, "fanout", durable=True), exclusive=True)

    class Fanout:
        exchange = name

        @staticmethod
        def bind() -> None:
            queue(conn.default_channel).declare()

        @staticmethod
        def received() -> list:
            messages = []
            while (message := queue(conn.default_channel).get(no_ack=True)) is not None:
                messages.append(message)
            return messages

    yield Fanout
    conn.default_channel.exchange_delete(name)
    conn.close()


@pytest.mark.rabbitmq
def test_a_batch_arrives_whole_in_order_as_persistent_json(rabbitmq_url, fanout):
    publisher = AmqpPublisher(rabbitmq_url)
    publisher.publish(fanout.exchange, events(1))  # declares the exchange
    fanout.bind()
    batch = events(500, start=1)
    publisher.publish(fanout.exchange, batch)  # returns once the broker confirmed all
    received = fanout.received()
    assert [json.loads(m.body) for m in received] == batch
    assert {m.content_type for m in received} == {"application/json"}
    assert {m.properties["delivery_mode"] for m in received} == {2}
    publisher.close()


@pytest.mark.rabbitmq
def test_the_exchange_is_a_durable_fanout(rabbitmq_url, fanout):
    AmqpPublisher(rabbitmq_url).publish(fanout.exchange, events(1))
    with Connection(rabbitmq_url) as conn, pytest.raises(PreconditionFailed):
        Exchange(fanout.exchange, "fanout", durable=False)(conn.default_channel).declare()


@pytest.mark.rabbitmq
def test_a_broken_connection_is_reopened_and_the_batch_sent(rabbitmq_url, fanout):
    publisher = AmqpPublisher(rabbitmq_url)
    publisher.publish(fanout.exchange, events(1))
    fanout.bind()
    publisher._connection.connection.transport.sock.shutdown(socket.SHUT_RDWR)
    publisher.publish(fanout.exchange, events(20, start=1))
    assert [json.loads(m.body)["seq"] for m in fanout.received()] == list(range(1, 21))


def test_an_unreachable_broker_is_an_error_after_the_retries():
    publisher = AmqpPublisher(f"amqp://guest:guest@127.0.0.1:{free_port()}//", retry_for_s=1.0)
    with pytest.raises(PublishError, match="could not publish"):
        publisher.publish("race-nowhere", events(3))


@pytest.mark.rabbitmq
def test_one_publisher_and_connection_per_process(rabbitmq_url):
    assert shared_amqp_publisher(rabbitmq_url) is shared_amqp_publisher(rabbitmq_url)
    assert (os.getpid(), rabbitmq_url) in publishers._shared


def test_the_callback_publisher_hands_over_batches_and_skips_empty_ones():
    batches = []
    publisher = CallbackPublisher(lambda exchange, batch: batches.append((exchange, batch)))
    publisher.publish("race-x", events(2))
    publisher.publish("race-x", [])
    assert batches == [("race-x", events(2))]
