"""Health probes: `/healthz` (the process answers) and `/readyz` (it can do its job).

`/readyz` checks, concurrently and each within `CHECK_TIMEOUT_S`:
- database: a `SELECT 1` through Django's connection;
- broker: an AMQP connection to `AMQP_URL` (skipped in embedded mode);
- channel_layer: a message sent to a fresh channel of this process's layer comes back.
  With channels-rabbitmq that is a round trip through RabbitMQ.
It answers 200 when every check passes and 503 otherwise, with a JSON body naming each
check's result, so a failing probe says what failed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

CHECK_TIMEOUT_S = 2.0

# The send of an earlier round trip still waiting for the broker, per event loop. While
# RabbitMQ is down channels-rabbitmq's send() waits for the reconnection; the send runs
# shielded (cancelling it can break the layer for good, see DESIGN.md), and at most one
# is left waiting however often the probe asks.
_pending_sends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future] = (
    weakref.WeakKeyDictionary()
)


class CheckFailed(Exception):
    """A readiness check failed; the message says how."""


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Callable[[], Awaitable[str]]] = {
        "database": check_database,
        "broker": check_broker,
        "channel_layer": check_channel_layer,
    }
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    ready = all(result["ok"] for result in report.values())
    body = {"status": "ok" if ready else "unavailable", "checks": report}
    if not ready:
        body["failed"] = [name for name, result in report.items() if not result["ok"]]
    return JsonResponse(body, status=200 if ready else 503)


async def _run(check: Callable[[], Awaitable[str]]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        result: dict[str, Any] = {"ok": True, "detail": detail}
    except TimeoutError:
        result = {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_S:g} s"}
    except Exception as exc:  # any failure is the probe's answer, not a server error
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = round(time.monotonic() - started, 4)
    return result


async def check_database() -> str:
    return await sync_to_async(_select_one)()


def _select_one() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


async def check_broker() -> str:
    if not settings.AMQP_URL:
        return "embedded mode: no broker configured"
    return await asyncio.to_thread(_amqp_connect, settings.AMQP_URL)


def _amqp_connect(url: str) -> str:
    with Connection(url, connect_timeout=CHECK_TIMEOUT_S) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0)
        return f"connected to {broker.as_uri()}"


async def check_channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        raise CheckFailed("no channel layer configured")
    loop = asyncio.get_running_loop()
    pending = _pending_sends.get(loop)
    if pending is not None and not pending.done():
        raise CheckFailed("an earlier round trip is still waiting for the broker")
    channel = await layer.new_channel("readyz.")
    token = uuid.uuid4().hex
    send = asyncio.ensure_future(layer.send(channel, {"type": "readyz.ping", "token": token}))
    _pending_sends[loop] = send
    await asyncio.shield(send)
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise CheckFailed("a different message came back")
    return f"round trip through {type(layer).__name__}"
