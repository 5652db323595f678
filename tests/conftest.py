"""Fixtures and service checks of the test suite; the process harness is `harness/`."""

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.signals import setting_changed
from django.dispatch import receiver

from harness.rabbitmq_node import RABBITMQ_SERVER, PrivateRabbitMQ, rabbitmq_installed
from harness.stack import RaceWebProcesses
from tests import broker_cleanup


@receiver(setting_changed)
def follow_deployment_mode(setting: str, value, **kwargs) -> None:
    """A test that overrides EMBEDDED gets that mode's lifecycle hooks, as a process started
    with those settings would (the mode is otherwise chosen once, in RacesConfig.ready)."""
    if setting == "EMBEDDED":
        from races import deployment

        deployment.install(deployment.EMBEDDED if value else deployment.DISTRIBUTED)


setting_changed.connect(broker_cleanup.record_simulation_queue)


@pytest.fixture(scope="session", autouse=True)
def shared_broker_left_clean() -> Iterator[None]:
    """Remove every race exchange and queue the run declared on the shared RabbitMQ."""
    from django.db.models.signals import post_save

    from races.models import Race

    post_save.connect(broker_cleanup.record_race, sender=Race)
    yield
    post_save.disconnect(broker_cleanup.record_race, sender=Race)
    broker_cleanup.remove_recorded()


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


def require_rabbitmq_server() -> None:
    if rabbitmq_installed():
        return
    message = f"{RABBITMQ_SERVER} is not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI must install rabbitmq-server)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def private_rabbitmq_node() -> Iterator[PrivateRabbitMQ]:
    """One private node for the session (booting costs seconds); killed at the end."""
    require_rabbitmq_server()
    with PrivateRabbitMQ() as node:
        yield node


@pytest.fixture
def private_rabbitmq(private_rabbitmq_node: PrivateRabbitMQ) -> PrivateRabbitMQ:
    """The session's private node, running and unpaused when the test starts (a test that
    killed it does not break the next one)."""
    private_rabbitmq_node.resume()
    if not private_rabbitmq_node.running():
        private_rabbitmq_node.start()
    return private_rabbitmq_node


def database_url() -> str:
    """The test database of this test run, as a DATABASE_URL for another process."""
    from django.db import connection

    settings = connection.settings_dict
    if "sqlite" in settings["ENGINE"]:
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def raceweb_processes(amqp_url: str, log_dir: Path, **env: str) -> RaceWebProcesses:
    """RaceWeb processes in distributed mode on `amqp_url` and this run's test database
    (use them from `transaction=True` tests, so the rows are committed); `env` adds or
    overrides settings. Stop them with `stop_all()`; `logs()` for a failing test."""
    environment = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "raceweb.settings",
        "DEBUG": "True",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        "METRICS_PORT": "0",  # any free port: several relays and workers run on this host
        **env,
    }
    environment.pop("CI", None)  # settings only; the test decides what CI means
    return RaceWebProcesses(log_dir, environment)
