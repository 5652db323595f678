"""Health probes: /healthz answers while the process runs; /readyz says which dependency
is missing (503 with the failed check named) and is 200 again once it is back."""

import asyncio
import json
import time

import pytest
from channels.layers import channel_layers
from channels.testing import HttpCommunicator

from harness.ports import free_port
from races.operations import health
from raceweb.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def rabbitmq_layer(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "channels_rabbitmq.core.RabbitmqChannelLayer",
            "CONFIG": {"host": url, "expiry": 10, "local_expiry": 10},
        }
    }


@pytest.fixture
def use_broker(settings):
    """Point AMQP_URL and the channel layer at `url`; close that layer afterwards."""

    def point_at(url: str) -> None:
        settings.AMQP_URL = url
        settings.CHANNEL_LAYERS = rabbitmq_layer(url)  # resets channels' cached layers

    yield point_at
    channel_layers.backends = {}


@pytest.fixture
async def close_layer():
    """Close the channel layer this test's event loop created, then drop a pending probe.

    In that order: cancelling a send that waits for the broker cancels the layer's
    connection future, which is the channels-rabbitmq trap the probe itself avoids.
    """
    yield
    layer = channel_layers.backends.get("default")
    if layer is not None and hasattr(layer, "close"):
        await layer.close()
    pending = health._pending_sends.get(asyncio.get_running_loop())
    if pending is not None:
        pending.cancel()
    channel_layers.backends = {}


async def get(path: str) -> tuple[int, dict]:
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"localhost")])
    response = await communicator.get_response(timeout=15)
    return response["status"], json.loads(response["body"])


async def readyz_until(wanted: int, within_s: float) -> dict:
    """Probe /readyz as a kubelet does until it answers `wanted`; return that body."""
    deadline = time.monotonic() + within_s
    while True:
        status, body = await get("/readyz")
        if status == wanted:
            return body
        assert time.monotonic() < deadline, f"/readyz still {status} after {within_s} s: {body}"
        await asyncio.sleep(0.5)


async def test_healthz_answers_ok():
    status, body = await get("/healthz")
    assert (status, body) == (200, {"status": "ok"})


async def test_readyz_in_embedded_mode_checks_database_and_in_memory_layer(settings):
    settings.AMQP_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    status, body = await get("/readyz")
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())
    assert "InMemoryChannelLayer" in body["checks"]["channel_layer"]["detail"]
    assert "embedded" in body["checks"]["broker"]["detail"]


@pytest.mark.rabbitmq
async def test_readyz_with_the_real_broker_round_trips_through_rabbitmq(
    rabbitmq_url, use_broker, close_layer
):
    use_broker(rabbitmq_url)
    status, body = await get("/readyz")
    assert status == 200, body
    assert "RabbitmqChannelLayer" in body["checks"]["channel_layer"]["detail"]
    assert body["checks"]["broker"]["ok"]


async def test_readyz_fails_naming_the_broker_when_nothing_listens(use_broker, close_layer):
    use_broker(f"amqp://guest:guest@127.0.0.1:{free_port()}")
    started = time.monotonic()
    status, body = await get("/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["failed"] == ["broker", "channel_layer"]
    assert body["checks"]["database"]["ok"]
    assert "refused" in body["checks"]["broker"]["error"].lower()
    # Every check is bounded: the probe answers well inside a kubelet timeout.
    assert time.monotonic() - started < health.CHECK_TIMEOUT_S + 2
    # Liveness does not depend on the broker: restarting the pod would not help.
    assert await get("/healthz") == (200, {"status": "ok"})


async def test_readyz_reports_a_broken_database(monkeypatch):
    def broken() -> str:
        raise health.CheckFailed("database is gone")

    monkeypatch.setattr(health, "_select_one", broken)
    status, body = await get("/readyz")
    assert status == 503
    assert body["failed"] == ["database"]
    assert "database is gone" in body["checks"]["database"]["error"]


async def test_repeated_probes_leave_at_most_one_round_trip_waiting(use_broker, close_layer):
    use_broker(f"amqp://guest:guest@127.0.0.1:{free_port()}")
    assert (await get("/readyz"))[0] == 503
    loop = asyncio.get_running_loop()
    waiting = health._pending_sends[loop]
    for _ in range(2):
        status, body = await get("/readyz")
        assert status == 503
        assert "still waiting" in body["checks"]["channel_layer"]["error"]
    assert health._pending_sends[loop] is waiting
    assert not waiting.done()


@pytest.mark.faults
async def test_readyz_fails_while_the_broker_is_down_and_recovers_when_it_returns(
    private_rabbitmq, use_broker, close_layer
):
    use_broker(private_rabbitmq.amqp_url.rstrip("/"))
    assert (await readyz_until(200, within_s=15))["status"] == "ok"
    layer = channel_layers.backends["default"]

    await asyncio.to_thread(private_rabbitmq.stop)
    down = await readyz_until(503, within_s=15)
    assert down["failed"] == ["broker", "channel_layer"]
    assert down["checks"]["database"]["ok"]

    await asyncio.to_thread(private_rabbitmq.start)
    back = await readyz_until(200, within_s=60)
    assert all(check["ok"] for check in back["checks"].values())
    # The same layer came back: the probe's timeouts did not break channels-rabbitmq.
    assert channel_layers.backends["default"] is layer
