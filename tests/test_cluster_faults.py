"""A RabbitMQ node dies mid-race on a three-node cluster, and nothing is lost (issue 18).

A private three-node cluster (harness/rabbitmq_cluster.py) and real processes: the relay
and web A on node 0, web B on node 2; the race is declared through node 1, so node 1
leads its quorum relay queue (RabbitMQ places a new quorum queue's leader on the node
the declaring client is connected to). The test publishes the race's positions itself,
with publisher confirms, through node 2, so it knows every position the broker took.

Node 1 is SIGKILLed mid-race: the queue elects a new leader on the two others, the race
goes on, every confirmed position is stored exactly once, and spectators on both web
processes see consecutive frames (no silent gap). With the classic queues of earlier
releases the race's queue lived on node 1 alone, and the positions published while it
was down were confirmed and dropped (unroutable). Then node 1 comes back, rejoins, and
the race still goes on.

(A frozen leader (partition) and a whole-cluster restart were tested on the branch that
built this; both timed out in an integration run on a loaded machine and are left out
until they are made robust: see the issue 18 note.)

About 35 s on this shared two-core machine (cluster boot 16-20 s, each
test 10-20 s); marked `cluster` so CI can report its time (`pytest -m cluster --durations=0`).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from harness.rabbitmq_cluster import PrivateRabbitMQCluster
from harness.rabbitmq_node import rabbitmq_installed
from harness.spectator_client import Spectator, consistent_frames
from harness.waiting import async_wait_until
from races import wire
from tests.conftest import raceweb_processes
from tests.fed_races import ConfirmedRace, everything_stored, publish_ticks

pytestmark = [
    pytest.mark.faults,
    pytest.mark.cluster,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def cluster():
    if not rabbitmq_installed():
        pytest.skip("rabbitmq-server is not installed")
    began = time.monotonic()
    with PrivateRabbitMQCluster("qq") as cluster:
        print(f"three-node cluster up in {time.monotonic() - began:.1f} s")
        yield cluster


@pytest.fixture(scope="module")
def stack(cluster, django_db_setup, django_db_blocker, tmp_path_factory):
    first, _, third = cluster.nodes
    with django_db_blocker.unblock():
        processes = raceweb_processes(first.amqp_url, tmp_path_factory.mktemp("cluster"))
    try:
        processes.relay()
        processes.web("web-a")
        processes.web("web-b", env={**processes.env, "AMQP_URL": third.amqp_url})
        yield processes
    finally:
        processes.stop_all()
        print(processes.logs())


async def spectators_reach(spectators: list[Spectator], race: ConfirmedRace, what: str) -> None:
    target = await sync_to_async(race.frame)()
    await async_wait_until(
        lambda: all((s.frames() or [-1])[-1] >= target for s in spectators), DEADLINE_S, what
    )


async def test_the_node_leading_the_race_queue_dies_and_nothing_is_lost(cluster, stack):
    first, second, third = cluster.nodes
    race = await sync_to_async(ConfirmedRace)(second.amqp_url, third.amqp_url)
    queue = wire.relay_queue_name(race.race.slug)
    leader = await asyncio.to_thread(cluster.leader, queue)
    assert leader is second, f"the queue is led by {leader.nodename}, not the declaring node"
    assert len(await asyncio.to_thread(cluster.queue_members, queue)) == 3
    path = f"/ws/races/{race.race.slug}/"
    spectators = [
        await Spectator(stack.base_url(name).replace("http", "ws") + path).open()
        for name in ("web-a", "web-b")
    ]
    try:
        await publish_ticks(race, range(0, 30 * 8, 30))
        await everything_stored(race, "positions before the node dies")

        await asyncio.to_thread(second.kill)  # the queue's leader, no clean shutdown
        await publish_ticks(race, range(240, 30 * 16, 30))
        stored = await everything_stored(race, "every confirmed position after the node died")
        new_leader = await asyncio.to_thread(cluster.leader, queue)
        assert new_leader in (first, third)
        await spectators_reach(spectators, race, "spectators live after the node died")

        await asyncio.to_thread(second.start)  # it comes back and rejoins
        await async_wait_until(
            lambda: len(cluster.running_nodes()) == 3, DEADLINE_S, "node 1 to rejoin"
        )
        await publish_ticks(race, range(480, 30 * 20, 30))
        stored = await everything_stored(race, "every confirmed position after the rejoin")
        await spectators_reach(spectators, race, "spectators live after the rejoin")

        assert len(stored) == len(set(stored)) == len({e["seq"] for e in race.confirmed})
        for spectator in spectators:
            assert consistent_frames(spectator.messages) == []
            assert spectator.frames()[-1] >= await sync_to_async(race.frame)()
        assert stack.alive("relay")
    finally:
        race.publisher.close()
        for spectator in spectators:
            await spectator.close()
