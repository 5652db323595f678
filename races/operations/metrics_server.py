"""`/metrics` over HTTP for the processes that are not daphne: the relay and Celery workers.

The web process serves `/metrics` through django-prometheus (raceweb/urls.py). The relay
calls `start_metrics_server()` when its command starts; a Celery worker starts it from
the `worker_ready` signal (`connect_celery_signals()`, called in raceweb/celery.py).
Both listen on `METRICS_PORT` (default 9100).
"""

from __future__ import annotations

import logging
from typing import Any
from wsgiref.simple_server import WSGIServer

from django.conf import settings
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.registry import CollectorRegistry

import races.operations.metrics  # noqa: F401  (defines every metric on the default registry)

logger = logging.getLogger(__name__)


def start_metrics_server(
    port: int | None = None, addr: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
) -> WSGIServer | None:
    """Serve this process's metrics from a background thread; return the server.

    `port=0` picks a free port (tests read it from `server.server_port`). A port that is
    taken (two relays on one host) is logged and the process carries on without
    /metrics: positions must keep flowing, and Prometheus reports the target down.
    """
    port = settings.METRICS_PORT if port is None else port
    try:
        server, _thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as error:
        logger.error("no /metrics: cannot listen on %s:%s (%s)", addr, port, error)
        return None
    logger.info("metrics on http://%s:%d/metrics", addr, server.server_port)
    return server


def _on_worker_ready(**_kwargs: Any) -> None:
    start_metrics_server()


def connect_celery_signals() -> None:
    """Start the metrics server once the Celery worker is ready to take tasks."""
    from celery.signals import worker_ready

    worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="raceweb-metrics-server")
