"""The private RabbitMQ node the fault tests break: it must really stop, crash and freeze,
keep durable data across restarts, and never touch the shared node on 5672."""

import time
import uuid

import amqp
import pytest

from tests.conftest import service_reachable

pytestmark = pytest.mark.faults


def publish_persistent(url_port: int, queue: str, body: bytes) -> None:
    """Publish with a publisher confirm: only a confirmed message is on disk."""
    with amqp.Connection(f"127.0.0.1:{url_port}", confirm_publish=True) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.basic_publish(amqp.Message(body, delivery_mode=2), routing_key=queue)
        channel.close()


def fetch(url_port: int, queue: str) -> bytes | None:
    with amqp.Connection(f"127.0.0.1:{url_port}") as connection:
        channel = connection.channel()
        message = channel.basic_get(queue, no_ack=True)
        channel.close()
        return None if message is None else message.body


def test_node_is_private_and_keeps_durable_messages_across_crash_and_restart(
    private_rabbitmq,
):
    node = private_rabbitmq
    assert node.amqp_port != 5672
    assert node.amqp_url == f"amqp://guest:guest@127.0.0.1:{node.amqp_port}"
    shared_up_before = service_reachable("127.0.0.1", 5672)
    restarted, crashed = (f"test-private-{uuid.uuid4().hex}" for _ in range(2))

    publish_persistent(node.amqp_port, restarted, b"before-restart")
    node.restart()
    assert fetch(node.amqp_port, restarted) == b"before-restart"

    # A fresh queue: an ack given just before a crash may be lost, so the broker may
    # deliver an acked message again (at-least-once; consumers drop duplicates by seq).
    publish_persistent(node.amqp_port, crashed, b"before-crash")
    node.kill()
    assert not node.accepts_amqp()
    node.start()
    assert fetch(node.amqp_port, crashed) == b"before-crash"

    assert service_reachable("127.0.0.1", 5672) == shared_up_before


def test_paused_node_accepts_tcp_but_answers_nothing(private_rabbitmq):
    node = private_rabbitmq
    with node.paused():
        started = time.monotonic()
        assert not node.accepts_amqp()
        assert time.monotonic() - started < 10
    node.wait_until_ready(10)
