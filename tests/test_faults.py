"""Faults on purpose, against real processes on a private RabbitMQ node.

One private node and one set of processes (web, relay, Celery worker and beat) serve the
whole module; a test that kills or restarts something brings it back before it ends, and
the `stack` fixture checks it is all running before each test. Every wait polls a
condition with a deadline. What each test proves is listed in README.md ("Faults and
what we promise").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import socket
import urllib.request
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from harness.spectator_client import ResumingSpectator, Spectator, consistent_frames
from harness.stack import http_status
from harness.waiting import async_wait_until
from races import wire
from races.models import LiveRace, Position, Race
from races.organizer import lifecycle
from tests.conftest import raceweb_processes
from tests.factories import make_race, unique_name
from tests.fed_races import ConfirmedRace, everything_stored, publish_ticks

pytestmark = [
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),  # each wait below has its own, shorter deadline
]

DEADLINE_S = 60.0
SEND_BUFFER_BYTES = 256 * 1024
MAX_SOCKETS_PER_ADDRESS = 30


@pytest.fixture(scope="module")
def stack(private_rabbitmq_node, django_db_setup, django_db_blocker, tmp_path_factory):
    """The distributed stack on the module's private node, as real processes."""
    queue = f"simulation-faults-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        processes = raceweb_processes(
            private_rabbitmq_node.amqp_url,
            tmp_path_factory.mktemp("faults"),
            SIMULATION_QUEUE=queue,
            SIMULATION_SEGMENT_SECONDS="3",
            SIMULATION_STALE_SECONDS="4",
            SIMULATION_WATCHDOG_SECONDS="1",
            WS_SEND_BUFFER_BYTES=str(SEND_BUFFER_BYTES),
            WS_MAX_CONNECTIONS_PER_IP=str(MAX_SOCKETS_PER_ADDRESS),
        )
    processes.queue = queue
    processes.node = private_rabbitmq_node
    try:
        processes.relay()
        processes.web()
        processes.worker()
        processes.beat()
        yield processes
    finally:
        processes.stop_all()
        print(processes.logs())


@pytest.fixture
def live(stack, private_rabbitmq, settings):
    """The stack, with this test's settings pointing at the private node."""
    settings.AMQP_URL, settings.EMBEDDED = private_rabbitmq.amqp_url, False
    settings.SIMULATION_QUEUE = stack.queue
    for name in ("relay", "web", "worker", "beat"):
        assert stack.alive(name), f"{name} is not running:\n{stack.logs()}"
    yield stack
    # Shown when the test failed: what the broker held at the end.
    columns = ("name", "messages_ready", "messages_unacknowledged", "consumers")
    print(private_rabbitmq.ctl("list_queues", *columns))


@pytest.fixture
async def spectators():
    """Opens spectators for a test and closes them all at its end, pass or fail."""
    opened: list = []

    async def open_one(url: str, address: str = "127.0.0.1") -> Spectator:
        opened.append(await Spectator(url, address).open())
        return opened[-1]

    yield open_one
    for spectator in opened:
        with contextlib.suppress(Exception):
            await spectator.close()


def simulated_race(athletes: int = 12) -> Race:
    """A race the Celery worker simulates: 4 ticks per wall second, ~1 h to finish."""
    return make_race(
        unique_name("Fault"), athletes=athletes, time_compression=20.0, tick_seconds=5.0
    )


def start(race: Race, url: str) -> Race:
    with override_settings(AMQP_URL=url, EMBEDDED=False):
        return lifecycle.start_race(race)


def stop(race: Race, url: str) -> None:
    with override_settings(AMQP_URL=url, EMBEDDED=False):
        lifecycle.stop_race(Race.objects.get(pk=race.pk))


def relay_frame(race: Race) -> int:
    return LiveRace.objects.filter(race=race).values_list("frame", flat=True).first() or 0


def stored_positions(race: Race) -> int:
    return Position.objects.filter(race=race).count()


async def frames_pass(race: Race, beyond: int, what: str) -> int:
    async def reached() -> int:
        frame = await sync_to_async(relay_frame)(race)
        return frame if frame > beyond else 0

    return await async_wait_until(reached, DEADLINE_S, what)


async def caught_up(spectators, race: Race, what: str) -> None:
    """Every spectator has a frame at least as new as the relay's frame when called."""
    target = await sync_to_async(relay_frame)(race)
    await async_wait_until(
        lambda: all((s.frames() or [-1])[-1] >= target for s in spectators), DEADLINE_S, what
    )


async def test_broker_restart_mid_race_race_goes_on_and_spectators_resume(live, spectators):
    node = live.node
    race = await sync_to_async(simulated_race)()
    ws = live.web_ports["web"]
    path = f"ws://127.0.0.1:{ws}/ws/races/{race.slug}/"
    watcher = await spectators(path)
    race = await sync_to_async(start)(race, node.amqp_url)
    before = await frames_pass(race, 8, "frames before the restart")
    positions_before = await sync_to_async(stored_positions)(race)

    await asyncio.to_thread(node.restart)

    # Long enough for several simulation segments to hand over after the restart (the
    # worker once stalled ~10 s after reconnecting, see raceweb/celery.py).
    after = await frames_pass(race, before + 80, "the race to go on for 20 s after it")
    await caught_up([watcher], race, "the connected spectator to be live again")
    assert await sync_to_async(stored_positions)(race) > positions_before
    # A spectator arriving after the restart: the web process's layer still works
    # (a cancelled channels-rabbitmq call can break it for good).
    newcomer = await spectators(path)
    await async_wait_until(lambda: newcomer.of_type("snapshot"), DEADLINE_S, "a snapshot")
    await frames_pass(race, after + 4, "more frames")
    await caught_up([watcher, newcomer], race, "both spectators live")
    assert consistent_frames(watcher.messages) == []
    assert consistent_frames(newcomer.messages) == []
    assert http_status(f"http://127.0.0.1:{ws}/readyz") == 200
    for name in ("relay", "web", "worker", "beat"):
        assert live.alive(name), name
    await sync_to_async(stop)(race, node.amqp_url)


def broker_listing(node, what: str, *columns: str) -> list[dict]:
    return json.loads(node.ctl(what, *columns, "--formatter", "json", "--quiet"))


async def test_every_queue_and_prefetch_is_one_rabbitmq_4_3_accepts(live):
    """RabbitMQ 4.3 refuses global QoS and transient non-exclusive queues; 4.x has no
    classic mirroring. The local 3.10 node cannot refuse them, so the test looks at what
    every process (relay, web's channel layer, Celery worker and beat) declared."""
    race = await sync_to_async(simulated_race)()
    race = await sync_to_async(start)(race, live.node.amqp_url)
    await frames_pass(race, 4, "frames of a simulated race")
    columns = ("name", "type", "durable", "auto_delete", "owner_pid")
    queues = await asyncio.to_thread(broker_listing, live.node, "list_queues", *columns)
    channels = await asyncio.to_thread(
        broker_listing, live.node, "list_channels", "name", "global_prefetch_count"
    )
    print("\n".join(f"{q['name']}\t{q['type']}" for q in queues))  # for the report
    by_name = {q["name"]: q for q in queues}
    assert by_name[wire.relay_queue_name(race.slug)]["type"] == "quorum"
    assert by_name[live.queue]["type"] == "quorum"
    transient_shared = [
        q["name"] for q in queues if not q["durable"] and q["owner_pid"] in ("", None)
    ]
    assert transient_shared == []
    assert channels  # relay, web and worker consume: each set a prefetch, none global
    assert [c["name"] for c in channels if c["global_prefetch_count"]] == []
    await sync_to_async(stop)(race, live.node.amqp_url)


async def test_relay_crash_loses_no_position_and_stores_none_twice(live, spectators):
    race = await sync_to_async(ConfirmedRace)(live.node.amqp_url)
    ws = f"ws://127.0.0.1:{live.web_ports['web']}/ws/races/{race.race.slug}/"
    watcher = await spectators(ws)
    await publish_ticks(race, range(0, 30 * 10, 30))
    await async_wait_until(lambda: watcher.frames(), DEADLINE_S, "a frame before the crash")

    await asyncio.to_thread(live.kill, "relay")  # mid-stream: unacked deliveries
    await publish_ticks(race, range(300, 30 * 20, 30))  # wait in the durable queue
    await asyncio.to_thread(live.relay)
    await publish_ticks(race, range(600, 30 * 25, 30))
    # The publisher repeats itself too (a simulation segment delivered again).
    await sync_to_async(race.publish)(race.confirmed[-16:])

    await everything_stored(race, "every published position")
    seqs = await sync_to_async(race.stored_seqs)()
    assert len(seqs) == len(set(seqs)) == len({e["seq"] for e in race.confirmed})
    await caught_up([watcher], race.race, "the spectator to see the last frame")
    assert consistent_frames(watcher.messages) == []


async def test_web_restart_spectators_reconnect_with_backoff_and_resume(live):
    race = await sync_to_async(simulated_race)()
    ws = f"ws://127.0.0.1:{live.web_ports['web']}/ws/races/{race.slug}/"
    spectator = ResumingSpectator(ws, first_delay_s=0.2, max_delay_s=2.0).start()
    try:
        await web_restart_resumes(live, race, spectator)
    finally:
        await spectator.close()


async def web_restart_resumes(live, race: Race, spectator: ResumingSpectator) -> None:
    race = await sync_to_async(start)(race, live.node.amqp_url)
    await frames_pass(race, 8, "frames before the restart")
    await async_wait_until(lambda: len(spectator.frames()) > 4, DEADLINE_S, "live frames")
    had = spectator.last_frame()

    await asyncio.to_thread(live.kill, "web")
    down_at = len(spectator.attempts)
    await asyncio.to_thread(live.web)
    await async_wait_until(lambda: spectator.connections >= 2, DEADLINE_S, "a reconnect")
    retries = spectator.attempts[down_at:]
    await frames_pass(race, spectator.last_frame() + 4, "frames after the restart")
    await caught_up([spectator], race, "the spectator to be live after the restart")

    assert consistent_frames(spectator.messages) == []
    assert spectator.last_frame() > had
    # It retried while the server was down, spacing its tries out, never a tight loop.
    assert len(retries) >= 2
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(retries))
    await sync_to_async(stop)(race, live.node.amqp_url)


def stalled_socket(port: int, path: str) -> socket.socket:
    """A WebSocket that completes the handshake and then never reads again, with a tiny
    receive window (a frozen phone, or a client that wants the server to buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.3", 0))
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Read what is buffered; True once the server has closed or reset the connection."""
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def metric(base: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{re.escape(wanted)}}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_a_spectator_that_stops_reading_is_dropped_and_the_others_stay_live(live, spectators):
    race = await sync_to_async(simulated_race)(athletes=200)
    port = live.web_ports["web"]
    base, path = f"http://127.0.0.1:{port}", f"/ws/races/{race.slug}/"
    dropped_before = metric(base, "raceweb_websocket_errors_total", endpoint="race",
                            reason="slow_client")  # fmt: skip
    reader = await spectators(f"ws://127.0.0.1:{port}{path}")
    stalled = await asyncio.to_thread(stalled_socket, port, path)
    try:
        await stalled_is_dropped(live, race, base, reader, stalled, dropped_before)
    finally:
        stalled.close()


async def stalled_is_dropped(live, race, base, reader, stalled, dropped_before) -> None:
    race = await sync_to_async(start)(race, live.node.amqp_url)

    lag: list[int] = []

    async def dropped() -> bool:
        frame = await sync_to_async(relay_frame)(race)
        lag.append(frame - (reader.frames() or [0])[-1])
        now = metric(base, "raceweb_websocket_errors_total", endpoint="race",
                     reason="slow_client")  # fmt: skip
        return now > dropped_before

    await async_wait_until(dropped, DEADLINE_S, "the stalled spectator to be dropped")
    await async_wait_until(lambda: closed_by_server(stalled), 10, "its connection to close")
    # The reading spectator was never held back: always within two seconds of live.
    assert max(lag) <= 8, lag
    await caught_up([reader], race, "the reading spectator to stay live")
    assert consistent_frames(reader.messages) == []
    assert reader.close_code is None
    await sync_to_async(stop)(race, live.node.amqp_url)


async def test_a_flood_from_one_address_is_limited(live, spectators):
    race = await sync_to_async(ConfirmedRace)(live.node.amqp_url, athletes=2)
    ws = f"ws://127.0.0.1:{live.web_ports['web']}/ws/races/{race.race.slug}/"
    crowd = [await spectators(ws, "127.0.0.9") for _ in range(MAX_SOCKETS_PER_ADDRESS)]
    await async_wait_until(
        lambda: all(s.of_type("snapshot") for s in crowd), DEADLINE_S, "every snapshot"
    )
    one_too_many = await spectators(ws, "127.0.0.9")
    await async_wait_until(lambda: one_too_many.close_code, 10, "the extra socket to close")
    assert one_too_many.close_code == 4429 and one_too_many.messages == []
    neighbour = await spectators(ws, "127.0.0.10")  # another address is not held back

    flooder, calm = crowd[0], crowd[1]
    for _ in range(200):
        await flooder.send('{"type": "ping"}')
    await async_wait_until(lambda: flooder.close_code, 10, "the flooding socket to close")
    assert flooder.close_code == 4429
    await publish_ticks(race, range(0, 90, 30))
    # The others get every frame that carries the published positions.
    await everything_stored(race, "the published positions")
    await caught_up([calm, neighbour], race.race, "frames for the others")
    assert calm.frames() and neighbour.frames()
    assert consistent_frames(calm.messages) == consistent_frames(neighbour.messages) == []


async def test_an_oversized_frame_closes_that_socket_only(live, spectators):
    race = await sync_to_async(ConfirmedRace)(live.node.amqp_url, athletes=2)
    ws = f"ws://127.0.0.1:{live.web_ports['web']}/ws/races/{race.race.slug}/"
    sender = await spectators(ws, "127.0.0.11")
    neighbour = await spectators(ws, "127.0.0.11")
    await async_wait_until(lambda: sender.messages and neighbour.messages, 10, "snapshots")
    await sender.send(json.dumps({"type": "ping", "pad": "x" * (2 * 1024 * 1024)}))
    await async_wait_until(lambda: sender.close_code, 10, "the sender's socket to close")
    # daphne's limit (1 MiB): autobahn drops the connection without a close frame (1006)
    # before the application sees any of it.
    assert sender.close_code in (1006, 1009)
    await publish_ticks(race, range(0, 90, 30))
    await everything_stored(race, "the published positions")
    await caught_up([neighbour], race.race, "frames for the neighbour")
    assert neighbour.frames() and consistent_frames(neighbour.messages) == []
    assert neighbour.close_code is None
