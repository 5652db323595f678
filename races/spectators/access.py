"""Who may watch a race and who may organize it: every door asks here.

Watching: a public race (listed) and an unlisted one (link only, never listed) are open to
everyone; a private race only to a valid share link (races.spectators.tokens) or a staff
login that may organize it. Everyone else gets exactly the answer of a race that does not
exist (the page, the JSON API, both sockets), so a private race's slug cannot be probed.
A genuine link for the race that expired or whose label was revoked gets its own answer
(HTTP 401 / 403, socket close 4401 / 4403): its holder already knows the race exists and
deserves to know why the page stopped.

Organizing: a superuser organizes every race; another staff account only the races of its
organization (`OrganizerMembership`); nobody else any.

Links travel in the `raceweb_watch_<slug>` cookie (set by `POST /races/<slug>/access` from
the page's `#access=<token>` fragment, so no token reaches a server log), or, for programs,
an `Authorization: Bearer` header (HTTP) or the `raceweb.spectator` WebSocket subprotocol
followed by the token as a second offered subprotocol.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils.module_loading import import_string

from races.models import Race, RevokedSpectatorLabel
from races.spectators import tokens

COOKIE_PREFIX = "raceweb_watch_"
SUBPROTOCOL = "raceweb.spectator"
HIDDEN_CACHE_SECONDS = 2.0


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    HIDDEN = "hidden"  # answered exactly like a race that does not exist
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Access:
    outcome: Outcome
    race: Race | None = None
    label: str = ""
    username: str = ""
    expires_at: datetime | None = None  # of the link that let this spectator in
    token: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    @property
    def reason(self) -> str:
        """Plain words for the page ("" when allowed or hidden)."""
        if self.outcome is Outcome.EXPIRED:
            return "This share link has expired. Ask the organizer for a new one."
        if self.outcome is Outcome.REVOKED:
            return "The organizer has withdrawn this share link. Ask them for a new one."
        return ""


def cookie_name(slug: str) -> str:
    return COOKIE_PREFIX + slug


# ---- organizing --------------------------------------------------------------------------


def organization_id(user: Any) -> int | None:
    membership = getattr(user, "organizer_membership", None) if user.is_authenticated else None
    return membership.organization_id if membership else None


def can_organize(user: Any, race: Race) -> bool:
    """May this account change this race (admin, race control)?"""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    org = organization_id(user)
    return org is not None and race.organization_id == org


def organized_races(user: Any, races=None):
    """The races this account organizes (a queryset; none for a non-member)."""
    races = Race.objects.all() if races is None else races
    if user.is_authenticated and user.is_active and user.is_superuser:
        return races
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return races.none()
    org = organization_id(user)
    return races.none() if org is None else races.filter(organization_id=org)


# ---- watching ----------------------------------------------------------------------------


def listed_races(races=None):
    """Races any list may show (pages, API, race-list socket): the public ones."""
    races = Race.objects.all() if races is None else races
    return races.filter(visibility=Race.Visibility.PUBLIC)


def spectator_access(slug: str, token: str | None, user: Any = None) -> Access:
    """May this visitor (link `token`, logged-in `user`) watch race `slug`?

    The race comes without its course: a socket keeps its `Access` while it is open, and
    a course's points (a list per point) held by each of 1,000 sockets made a web process
    of the design load (`bench/run.py --scenario b`, 2026-12-01) grow to 1.1 GiB and 2.8
    million objects, whose full garbage collections paused it for 0.2-1.3 s, delaying
    frames by as much. Pages that show the course load it (`race.course`) per request."""
    race = Race.objects.filter(slug=slug).first()
    if race is None:
        return Access(Outcome.HIDDEN)
    if race.visibility != Race.Visibility.PRIVATE:
        return Access(Outcome.ALLOWED, race, username=_username(user))
    if user is not None and can_organize(user, race):
        return Access(Outcome.ALLOWED, race, username=_username(user))
    if not token:
        return Access(Outcome.HIDDEN)
    try:
        claims = tokens.verify(token)
    except tokens.TokenExpired as expired:
        if expired.race != slug:
            return Access(Outcome.HIDDEN)
        return Access(Outcome.EXPIRED, race, expires_at=expired.expired_at)
    except tokens.TokenRefused:
        return Access(Outcome.HIDDEN)
    if claims.race != slug:
        return Access(Outcome.HIDDEN)
    if claims.label and label_revoked(race, claims.label):
        return Access(Outcome.REVOKED, race, label=claims.label)
    return Access(Outcome.ALLOWED, race, claims.label, expires_at=claims.expires_at, token=token)


def recheck(access: Access) -> Access:
    """An open socket's access again (its link may have expired or been revoked since)."""
    if not access.token or access.race is None:
        return access
    return spectator_access(access.race.slug, access.token)


def label_revoked(race: Race, label: str) -> bool:
    return RevokedSpectatorLabel.objects.filter(race=race, label=label).exists()


def request_access(request: HttpRequest, slug: str) -> Access:
    """An HTTP request's access to race `slug` (cookie, Bearer header, staff session)."""
    token = request.COOKIES.get(cookie_name(slug))
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header.removeprefix("Bearer ").strip()
    return spectator_access(slug, token, request.user)


def scope_access(scope: dict, slug: str) -> Access:
    """A WebSocket's access to race `slug` (synchronous: call through database_sync_to_async)."""
    headers = dict(scope.get("headers") or [])
    cookies = parse_cookie(headers.get(b"cookie", b"").decode("latin-1"))
    token = cookies.get(cookie_name(slug))
    offered = scope.get("subprotocols") or []
    if SUBPROTOCOL in offered:
        others = [p for p in offered if p != SUBPROTOCOL]
        token = others[0] if others else token
    return spectator_access(slug, token, _session_user(cookies))


def _session_user(cookies: dict) -> Any:
    """The staff login of a socket's session cookie (sockets have no AuthMiddleware)."""
    key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return AnonymousUser()
    store = import_string(settings.SESSION_ENGINE + ".SessionStore")(key)
    return get_user(SimpleNamespace(session=store))


def _username(user: Any) -> str:
    return user.get_username() if user is not None and user.is_authenticated else ""


# ---- races no list may show, cached per process for the hubs' hot path -------------------

_hidden: tuple[float, frozenset[str]] = (0.0, frozenset())


def hidden_slugs_if_fresh() -> frozenset[str] | None:
    """The cached slugs of unlisted and private races, or None when older than
    HIDDEN_CACHE_SECONDS (then call `refresh_hidden_slugs` off the event loop)."""
    loaded, slugs = _hidden
    return slugs if time.monotonic() - loaded < HIDDEN_CACHE_SECONDS else None


def refresh_hidden_slugs() -> frozenset[str]:
    global _hidden
    slugs = frozenset(
        Race.objects.exclude(visibility=Race.Visibility.PUBLIC).values_list("slug", flat=True)
    )
    _hidden = (time.monotonic(), slugs)
    return slugs


def forget_hidden_slugs() -> None:
    """After a visibility change in this process: the next check reads the database."""
    global _hidden
    _hidden = (0.0, frozenset())
