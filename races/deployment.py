"""Embedded or distributed: how RaceWeb's parts meet, decided once when Django starts.

- ``EMBEDDED`` (no ``AMQP_URL``): one process. The relay runs in the web server's event
  loop and the simulation in threads beside it; status changes reach them in-process.
- ``DISTRIBUTED``: web, relay and Celery workers are separate processes that meet on
  RabbitMQ. A started race gets its exchange and relay queue declared (before anything
  can publish), the relays a control notice, and Celery the first simulation segment.

``RacesConfig.ready()`` calls ``install(for_settings())``: it registers the chosen mode's
lifecycle hooks, in the order they must run, and every later question ("which ASGI app?",
"may ``manage.py relay`` run?", "what starts with ``serve``?") asks ``current()``. No
other module reads ``settings.EMBEDDED`` to decide. Tests that override ``EMBEDDED`` get
the matching mode installed by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.conf import settings

Hook = Callable[[Any], None]


class Deployment:
    """What differs between the modes: the side effects of a status change, and what
    runs inside the web process."""

    name = ""
    # Whether `manage.py relay` has work: the relay is a process of its own.
    separate_relay = False

    def lifecycle_hooks(self) -> dict[str, list[Hook]]:
        """``races.organizer.lifecycle`` hook lists by name, each in the order to run."""
        raise NotImplementedError

    def wrap_asgi(self, application: Any) -> Any:
        """The web process's ASGI application, with what this mode runs around it."""
        return application

    def start_with_server(self) -> None:
        """Work ``manage.py serve`` starts before daphne (nothing, unless embedded)."""

    def server_ready_callable(self) -> Callable[[], None] | None:
        """daphne's ``ready_callable``: run just before its event loop starts."""
        return None

    def tracker_publisher(self) -> Any:
        """Where the web process puts tracker fixes (races.trackers): a
        ``simulator.publishers.Publisher`` into the races' fanouts."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<deployment {self.name}>"


class Embedded(Deployment):
    name = "embedded"

    def lifecycle_hooks(self) -> dict[str, list[Hook]]:
        from races.relay import embedded
        from races.simulation import embedded_runner

        return {
            "on_started": [embedded.notify_relay, embedded_runner.start_simulation],
            "on_stopped": [embedded.notify_relay],
            "on_reset": [embedded.notify_relay],
            "on_decided": [embedded.send_decision],
        }

    def wrap_asgi(self, application: Any) -> Any:
        from races.relay.embedded import EmbeddedRelayMiddleware

        return EmbeddedRelayMiddleware(application)  # the relay starts in the server's loop

    def start_with_server(self) -> None:
        from races.simulation import embedded_runner

        embedded_runner.start()  # the demo races move without Celery or RabbitMQ

    def server_ready_callable(self) -> Callable[[], None] | None:
        from races.relay import embedded

        return embedded.start_when_loop_runs

    def tracker_publisher(self) -> Any:
        from races.relay import embedded
        from simulator.publishers import CallbackPublisher

        return CallbackPublisher(embedded.publish)  # the door the embedded simulation uses


class Distributed(Deployment):
    name = "distributed"
    separate_relay = True

    def lifecycle_hooks(self) -> dict[str, list[Hook]]:
        from races.relay import broker
        from races.simulation import tasks

        # The exchange and the relay's queue must exist before anything can publish:
        # declare_race runs before the first segment is enqueued.
        return {
            "on_started": [broker.declare_race, broker.notify_relay, tasks.start_simulation],
            "on_stopped": [broker.notify_relay],
            "on_reset": [broker.notify_relay],
            "on_deleted": [broker.delete_race],
            "on_decided": [broker.send_decision],
        }

    def tracker_publisher(self) -> Any:
        from simulator.publishers import AmqpPublisher

        # One confirm-mode connection per web process: a fix is answered 200 only once the
        # broker confirmed it into the race's fanout. It gives up after a few seconds (the
        # request answers 503 and the app retries), where the simulation's waits 30 s.
        key = (os.getpid(), settings.AMQP_URL)
        if key not in _tracker_publishers:
            _tracker_publishers[key] = AmqpPublisher(
                settings.AMQP_URL, retry_for_s=TRACKER_RETRY_S, confirm_timeout_s=TRACKER_RETRY_S
            )
        return _tracker_publishers[key]


TRACKER_RETRY_S = 5.0
_tracker_publishers: dict[tuple[int, str], Any] = {}


EMBEDDED = Embedded()
DISTRIBUTED = Distributed()

_current: Deployment | None = None


def for_settings() -> Deployment:
    """The mode the settings ask for (``EMBEDDED`` = no ``AMQP_URL``)."""
    return EMBEDDED if settings.EMBEDDED else DISTRIBUTED


def install(mode: Deployment) -> None:
    """Make ``mode`` the current one: its hooks replace the previous mode's in lifecycle."""
    global _current
    from races.organizer import lifecycle

    previous = _current.lifecycle_hooks() if _current is not None else {}
    for name, hooks in mode.lifecycle_hooks().items():
        registered: list[Hook] = getattr(lifecycle, name)
        for hook in previous.get(name, []):
            if hook in registered:
                registered.remove(hook)
        registered.extend(hooks)
    _current = mode


def current() -> Deployment:
    """The installed mode (``RacesConfig.ready()`` installs one before anything asks)."""
    if _current is None:
        raise RuntimeError("no deployment mode installed: is the races app loaded?")
    return _current
