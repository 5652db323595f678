"""The shared RabbitMQ keeps nothing a test run made.

Every race a test starts declares a durable exchange and a quorum relay queue on the broker
(and a test that parks the simulation declares an idle quorum queue). A quorum queue is a
Raft cluster with its own files: a few hundred left behind by earlier runs made the shared
RabbitMQ 3.10 (1,024 file handles) stop answering AMQP handshakes on 2026-12-01. So the
suite records the race slugs and simulation queues it makes and removes them at the end.
"""

from __future__ import annotations

import contextlib

import amqp

from races import wire

race_slugs: set[str] = set()
simulation_queues: set[str] = set()


def record_race(sender, instance, **kwargs) -> None:
    """post_save of Race: a test made (or renamed) this race."""
    race_slugs.add(instance.slug)


def record_simulation_queue(setting: str, value, **kwargs) -> None:
    """setting_changed: a test parks the simulation in its own queue."""
    if setting == "SIMULATION_QUEUE" and value and value != wire.SIMULATION_QUEUE:
        simulation_queues.add(value)


def remove_recorded(host: str = "127.0.0.1", port: int = 5672) -> int:
    """Delete the recorded queues and exchanges from the shared broker; how many it tried."""
    queues = [wire.relay_queue_name(slug) for slug in race_slugs] + sorted(simulation_queues)
    exchanges = [wire.exchange_name(slug) for slug in race_slugs]
    try:
        connection = amqp.Connection(f"{host}:{port}", connect_timeout=5)
        connection.connect()
    except (OSError, amqp.exceptions.AMQPError):
        return 0  # no shared broker in this run: nothing was declared on it
    with connection:
        channel = connection.channel()
        for kind, names in (("queue", queues), ("exchange", exchanges)):
            for name in names:
                try:
                    getattr(channel, f"{kind}_delete")(name)
                except amqp.exceptions.ChannelError:
                    with contextlib.suppress(Exception):
                        channel = connection.channel()  # the error closed the channel
    return len(queues) + len(exchanges)
