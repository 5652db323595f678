"""The WebSocket endpoints: thin ASGI applications in front of the process's hubs.

- `ws/races/<slug>/`: the native spectator protocol (docs/ARCHITECTURE.md): a snapshot on
  connect (or, with `?resume=N`, only the frames after N), then numbered updates;
  `{"type": "resume", "seq": N}` and `{"type": "ping"}` from the client.
- `ws/races/`: the race list, then an announcement whenever a race starts or ends.
- `ws?race=race-<slug>` / `ws?race=all`: the seed system's endpoint, one message per
  contract event.

Plain ASGI rather than Channels consumers: the hot path (a frame to many sockets) is a
hub writing pre-serialized text straight to `send`, and the per-message
`close_old_connections()` hop of `AsyncConsumer.dispatch` (Channels >= 4.2) is not paid
here at all. The ORM is touched only when a socket opens (race exists? race list).
Close codes: 4400 unintelligible client message (text that is not a known JSON message,
binary, or longer than MAX_CLIENT_MESSAGE), 4404 unknown race (and a private race without a
valid share link: races.spectators.access), 4401 share link expired, 4403 share link
revoked, 1011 channel layer unavailable. A refused browser Origin is refused at the
handshake (HTTP 403). Heartbeats: daphne pings every socket (protocol level), and clients
may send `ping`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import validate_host
from django.utils import timezone

from races import wire, wire_v2
from races.operations import audit, metrics
from races.spectators import access, race_hub, snapshots
from races.spectators import hub as hubs

logger = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE = 1024
CLOSE_BAD_MESSAGE = 4400
CLOSE_UNKNOWN_RACE = 4404
CLOSE_UNAVAILABLE = 1011
PONG = {"type": "websocket.send", "text": wire.dumps(wire.PONG)}


class BadMessage(ValueError):
    pass


class AccessEnded(Exception):
    """A genuine share link that expired or was revoked: close with its own code."""

    def __init__(self, admitted: access.Access) -> None:
        expired = admitted.outcome is access.Outcome.EXPIRED
        super().__init__(admitted.reason)
        self.code = wire.CLOSE_LINK_EXPIRED if expired else wire.CLOSE_LINK_REVOKED
        self.metric = "link_expired" if expired else "link_revoked"


async def admit(scope: dict, slug: str) -> access.Access:
    """The socket's access to race `slug`; UnknownRace when it must look missing,
    AccessEnded when its link is over. The audit row is written later, by `record`."""
    admitted = await database_sync_to_async(access.scope_access)(scope, slug)
    if admitted.outcome is access.Outcome.HIDDEN:
        raise snapshots.UnknownRace(slug)
    if not admitted.allowed:
        raise AccessEnded(admitted)
    return admitted


async def record(visit: audit.Visit, slug: str, admitted: access.Access | None = None) -> None:
    """The connection's audit row, written once the spectator is subscribed (and has its
    snapshot): measured in-process (median of 100 connects, 3 rounds, Postgres on this
    shared machine), writing it before the snapshot took connect-to-snapshot from 5 ms to
    12-13 ms; written afterwards, with and without it measured alike (10-12 ms in one run
    on a busier machine): nobody waits for it."""
    label, username = (admitted.label, admitted.username) if admitted else ("", "")
    await database_sync_to_async(visit.admitted)(slug, label, username)


async def until_access_ends(follow: Any, admitted: access.Access) -> None:
    """Run `follow` (the socket's loop) while the share link stays valid: re-checked every
    SPECTATOR_TOKEN_RECHECK_SECONDS and at its expiry, so a revoked or expired link closes
    the socket (AccessEnded) without any per-frame work."""
    if not admitted.token:
        await follow
        return
    task = asyncio.ensure_future(follow)
    try:
        while True:
            wait = settings.SPECTATOR_TOKEN_RECHECK_SECONDS
            if admitted.expires_at is not None:
                left = (admitted.expires_at - timezone.now()).total_seconds() + 0.05
                wait = max(0.0, min(wait, left))
            done, _ = await asyncio.wait({task}, timeout=wait)
            if done:
                task.result()
                return
            current = await database_sync_to_async(access.recheck)(admitted)
            if not current.allowed:
                raise AccessEnded(current)
    finally:
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


def origin_allowed(scope: dict) -> bool:
    """No Origin (non-browser clients): yes. A browser: same host, ALLOWED_HOSTS (never
    via "*"), or listed in WS_ALLOWED_ORIGINS ("*" there allows every origin)."""
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin")
    if origin is None:
        return True
    origin_text = origin.decode("latin-1").strip().lower()
    allowed = [o.lower().rstrip("/") for o in settings.WS_ALLOWED_ORIGINS]
    if "*" in allowed or origin_text in allowed:
        return True
    parts = urlsplit(origin_text)
    if not parts.hostname:
        return False
    host = headers.get(b"host", b"").decode("latin-1").lower()
    if parts.netloc == host:
        return True
    patterns = [h for h in settings.ALLOWED_HOSTS if h != "*"]
    return validate_host(parts.hostname, patterns)


def client_message(message: dict) -> dict:
    """The client's JSON message, or BadMessage."""
    text = message.get("text")
    if text is None:
        raise BadMessage("binary message")
    if len(text) > MAX_CLIENT_MESSAGE:
        raise BadMessage("message too long")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise BadMessage("not JSON") from error
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadMessage("not a message object")
    return data


def query_param(scope: dict, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[-1] if values else None


class Socket:
    """Base: handshake with the Origin check, then a receive loop until disconnect."""

    endpoint = (
        ""  # the `endpoint` label of the WebSocket metrics (races.operations.metrics.ENDPOINTS)
    )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if not origin_allowed(scope):
            metrics.websocket_error(self.endpoint, "origin")
            await send({"type": "websocket.close", "code": 403})
            return
        await send(self.accept(scope))
        metrics.websocket_connected(self.endpoint)
        visit = audit.Visit(self.endpoint, audit.scope_address(scope))
        close_code = None
        try:
            await self.serve(scope, receive, send, visit)
        except AccessEnded as ended:
            close_code = ended.code
            metrics.websocket_error(self.endpoint, ended.metric)
            await send({"type": "websocket.close", "code": ended.code, "reason": str(ended)})
        except BadMessage as error:
            close_code = CLOSE_BAD_MESSAGE
            logger.info("closing a socket: %s", error)
            metrics.websocket_error(self.endpoint, "bad_message")
            await send({"type": "websocket.close", "code": CLOSE_BAD_MESSAGE})
        except snapshots.UnknownRace:
            close_code = CLOSE_UNKNOWN_RACE
            metrics.websocket_error(self.endpoint, "unknown_race")
            await send({"type": "websocket.close", "code": CLOSE_UNKNOWN_RACE})
        except hubs.HubUnavailable:
            close_code = CLOSE_UNAVAILABLE
            metrics.websocket_error(self.endpoint, "layer_unavailable")
            await send({"type": "websocket.close", "code": CLOSE_UNAVAILABLE})
        except Exception:
            metrics.websocket_error(self.endpoint, "other")
            raise  # daphne logs it and closes the socket with 1011
        finally:
            metrics.websocket_disconnected(self.endpoint)
            if visit.record_id is not None:
                await database_sync_to_async(visit.ended)(close_code)

    def accept(self, scope: dict) -> dict:
        """The handshake's answer: a program that sent its spectator link as a
        subprotocol offer gets `raceweb.spectator` back (`races.spectators.access`)."""
        accept = {"type": "websocket.accept"}
        if access.SUBPROTOCOL in (scope.get("subprotocols") or []):
            accept["subprotocol"] = access.SUBPROTOCOL  # the token rides as the other offer
        return accept

    async def serve(self, scope: dict, receive: Any, send: Any, visit: audit.Visit) -> None:
        raise NotImplementedError

    @staticmethod
    async def messages(receive: Any):
        """Client messages until the socket closes."""
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] == "websocket.receive":
                yield message


class RaceSocket(Socket):
    """`raceweb.v2` among the client's subprotocols: snapshots and updates in the compact
    binary form (`races.wire_v2`); race notices and pong stay JSON text. Otherwise v1."""

    endpoint = "race"

    def accept(self, scope: dict) -> dict:
        # One subprotocol per socket: the compact form wins; a link then rides the cookie.
        if compact_asked(scope):
            return {"type": "websocket.accept", "subprotocol": wire_v2.SUBPROTOCOL}
        return super().accept(scope)

    async def serve(self, scope: dict, receive: Any, send: Any, visit: audit.Visit) -> None:
        slug = scope["url_route"]["kwargs"]["slug"]
        admitted = await admit(scope, slug)
        following = self.follow(scope, receive, send, slug, partial(record, visit, slug, admitted))
        await until_access_ends(following, admitted)

    async def follow(self, scope: dict, receive: Any, send: Any, slug: str, recorded) -> None:
        hub = await race_hub.race_hub(slug)
        spectator = hubs.Spectator(send, compact=compact_asked(scope))
        try:
            await hub.join(spectator, _frame_number(query_param(scope, "resume")))
            await recorded()
            async for message in self.messages(receive):
                data = client_message(message)
                if data["type"] == "ping":
                    await send(PONG)
                elif data["type"] == "resume":
                    since = data.get("seq")
                    if isinstance(since, bool) or not isinstance(since, int):
                        raise BadMessage("resume needs an integer seq")
                    await hub.resume(spectator, since)
                else:
                    raise BadMessage(f"unknown message type {data['type'][:40]!r}")
        finally:
            hub.leave(spectator)


class RaceListSocket(Socket):
    endpoint = "races"

    async def serve(self, scope: dict, receive: Any, send: Any, visit: audit.Visit) -> None:
        hub = await hubs.race_list_hub()
        spectator = hubs.Spectator(send)
        spectator.backlog = []
        hub.add(spectator)
        try:
            races = await database_sync_to_async(_race_list)()
            await spectator.deliver([hubs.text_message(wire.dumps(wire.races_message(races)))])
            async for message in self.messages(receive):
                if client_message(message)["type"] != "ping":
                    raise BadMessage("the race list only answers ping")
                await send(PONG)
        finally:
            hub.leave(spectator)


class SeedSocket(Socket):
    """The seed system's `ws?race=race-<slug>` and `ws?race=all`; client text is ignored."""

    endpoint = "seed"

    async def serve(self, scope: dict, receive: Any, send: Any, visit: audit.Visit) -> None:
        race = query_param(scope, "race")
        if not race:
            raise BadMessage("missing ?race=race-<slug> or ?race=all")
        if race == wire.SEED_ALL:  # unlisted and private races are left out (SeedHub)
            await self.follow(receive, send, race, partial(record, visit, wire.SEED_ALL))
            return
        slug = wire.slug_of_exchange(race)
        admitted = await admit(scope, slug)
        await until_access_ends(
            self.follow(receive, send, race, partial(record, visit, slug, admitted)), admitted
        )

    async def follow(self, receive: Any, send: Any, race: str, recorded) -> None:
        """Subscribed first, recorded after: the stream has no snapshot, so a listener must
        be in the hub as early as it can be (`ws?race=all` has no hop before it)."""
        hub = await hubs.seed_hub()
        spectator = hubs.Spectator(send, None if race == wire.SEED_ALL else race)
        hub.add(spectator)
        try:
            await recorded()
            async for message in self.messages(receive):
                text = message.get("text")
                if text is None or len(text) > MAX_CLIENT_MESSAGE:
                    raise BadMessage("binary or oversized message")
        finally:
            hub.leave(spectator)


def compact_asked(scope: dict) -> bool:
    return wire_v2.SUBPROTOCOL in (scope.get("subprotocols") or ())


def _frame_number(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _race_list() -> list[dict]:
    from races.models import Race

    races = access.listed_races(Race.objects.order_by("status", "name"))
    return [wire.race_summary(race) for race in races]
