import os
import shutil
import socket
from pathlib import Path

import pytest
from django.core.signals import setting_changed
from django.dispatch import receiver

# Fixtures `private_rabbitmq` / `private_rabbitmq_node`: a private broker to break in tests.
from tests.private_rabbitmq import private_rabbitmq, private_rabbitmq_node  # noqa: F401


@receiver(setting_changed)
def follow_deployment_mode(setting: str, value, **kwargs) -> None:
    """A test that overrides EMBEDDED gets that mode's lifecycle hooks, as a process started
    with those settings would (the mode is otherwise chosen once, in RacesConfig.ready)."""
    if setting == "EMBEDDED":
        from races import deployment

        deployment.install(deployment.EMBEDDED if value else deployment.DISTRIBUTED)


SAMPLE_GPX = Path(__file__).resolve().parent.parent / "samples" / "gpx"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a service is missing on a developer machine; fail in CI."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI must start it)")
    pytest.skip(message)


@pytest.fixture
def rabbitmq_url() -> str:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
def sample_gpx():
    def read(name: str) -> bytes:
        return (SAMPLE_GPX / name).read_bytes()

    return read


def require_executable(name: str) -> str:
    """The path of a command-line tool; skip when missing locally, fail in CI."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI must install it)")
    pytest.skip(message)


@pytest.fixture
async def fresh_layer():
    """A new in-memory channel layer and no hubs: group memberships do not leak across tests."""
    from channels.layers import channel_layers

    from races.relay import embedded
    from races.spectators import hub as hubs

    channel_layers.backends.clear()
    yield
    await hubs.close_all()
    channel_layers.backends.clear()
    embedded.stop()
