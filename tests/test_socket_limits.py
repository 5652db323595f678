"""Per-address socket limits and per-socket message limits (races/spectators/socket_limits.py), on
the in-memory layer. The same limits against a real daphne: tests/test_faults.py."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from races.relay import embedded
from races.spectators import hub as hubs
from races.spectators.routing import websocket_urlpatterns
from races.spectators.socket_limits import CLOSE_TOO_MANY, MessageBudget, SocketLimits
from tests.factories import started_race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def fresh_layer():
    channel_layers.backends.clear()
    yield
    await hubs.close_all()
    channel_layers.backends.clear()
    embedded.stop()


@pytest.fixture
def application():
    return SocketLimits(URLRouter(websocket_urlpatterns))


def socket_from(application, address: str, path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path)
    # The application task has not run yet: it reads the scope once it starts.
    communicator.scope["client"] = [address, 50000]
    return communicator


async def opened(communicator: WebsocketCommunicator) -> dict:
    """Connect; return the server's first message (a snapshot, or the close)."""
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return await communicator.receive_output(timeout=5)


async def test_one_address_gets_at_most_the_limit_of_sockets(application, settings):
    settings.WS_MAX_CONNECTIONS_PER_IP = 3
    race = await sync_to_async(started_race)(athletes=2)
    path = f"/ws/races/{race.slug}/"
    crowd = [socket_from(application, "203.0.113.7", path) for _ in range(3)]
    for spectator in crowd:
        assert json.loads((await opened(spectator))["text"])["type"] == "snapshot"

    refused = socket_from(application, "203.0.113.7", path)
    assert await opened(refused) == {"type": "websocket.close", "code": CLOSE_TOO_MANY}
    neighbour = socket_from(application, "198.51.100.1", path)
    assert json.loads((await opened(neighbour))["text"])["type"] == "snapshot"

    await crowd[0].disconnect()
    again = socket_from(application, "203.0.113.7", path)
    assert json.loads((await opened(again))["text"])["type"] == "snapshot"
    for spectator in [*crowd[1:], neighbour, again]:
        await spectator.disconnect()


async def test_a_socket_flooding_messages_is_closed_and_others_carry_on(application, settings):
    settings.WS_CLIENT_MESSAGES_PER_SECOND, settings.WS_CLIENT_MESSAGE_BURST = 1, 5
    race = await sync_to_async(started_race)(athletes=2)
    path = f"/ws/races/{race.slug}/"
    flooder = socket_from(application, "203.0.113.7", path)
    calm = socket_from(application, "203.0.113.7", path)
    await opened(flooder)
    await opened(calm)

    for _ in range(5):  # a burst within the budget is answered
        await flooder.send_to(text_data='{"type": "ping"}')
        assert json.loads(await flooder.receive_from(timeout=5)) == {"type": "pong"}
    for _ in range(20):
        await flooder.send_to(text_data='{"type": "ping"}')
    outputs = []
    while (output := await flooder.receive_output(timeout=5))["type"] != "websocket.close":
        outputs.append(output)
    assert output["code"] == CLOSE_TOO_MANY
    assert len(outputs) <= 1  # at most one pong slipped in while the bucket refilled

    await calm.send_to(text_data='{"type": "ping"}')
    assert json.loads(await calm.receive_from(timeout=5)) == {"type": "pong"}
    await calm.disconnect()


def test_the_message_budget_refills_at_its_rate(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("races.spectators.socket_limits.time.monotonic", lambda: now[0])
    budget = MessageBudget(rate=2, burst=3)
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one message's worth at 2 per second
    assert [budget.take(), budget.take()] == [True, False]
    now[0] += 60  # never more than the burst
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
