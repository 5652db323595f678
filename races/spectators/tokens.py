"""Spectator share links: standard HS256 JWTs (PyJWT), so a ticketing site can mint them.

Claims (README, "Private races"):
- `race`: the race's slug (required),
- `exp`: expiry, seconds since the epoch (required),
- `aud`: `raceweb:spectator` (required; keeps other JWTs signed with the same secret out),
- `label`: optional free text ("press", "ticket 1234"); revoking a label in the admin
  withdraws every link minted with it,
- `iat`: optional issue time.

The secret is `SPECTATOR_TOKEN_SECRET`, or one derived from `SECRET_KEY` when unset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings

AUDIENCE = "raceweb:spectator"
ALGORITHM = "HS256"
MAX_LABEL = 100


class TokenRefused(ValueError):
    """Not a link this server signed for any race (bad signature, shape or audience)."""


class TokenExpired(ValueError):
    """A genuine link for `race` whose time is up."""

    def __init__(self, race: str, expired_at: datetime) -> None:
        super().__init__(f"link for {race!r} expired at {expired_at:%Y-%m-%d %H:%M} UTC")
        self.race, self.expired_at = race, expired_at


@dataclass(frozen=True)
class SpectatorClaims:
    race: str
    expires_at: datetime
    label: str


def secret() -> str:
    configured = settings.SPECTATOR_TOKEN_SECRET
    if configured:
        return configured
    return hashlib.sha256(f"raceweb-spectator:{settings.SECRET_KEY}".encode()).hexdigest()


def mint(slug: str, hours: float, label: str = "", now: datetime | None = None) -> str:
    """A share link token for `slug`, valid for `hours` from `now`."""
    if hours <= 0:
        raise ValueError("hours must be positive")
    if len(label) > MAX_LABEL:
        raise ValueError(f"label longer than {MAX_LABEL} characters")
    issued = now or datetime.now(UTC)
    claims = {
        "race": slug,
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(hours=hours)).timestamp()),
    }
    if label:
        claims["label"] = label
    return jwt.encode(claims, secret(), algorithm=ALGORITHM)


def verify(token: str) -> SpectatorClaims:
    """The link's claims; TokenExpired for a genuine but expired one; TokenRefused else."""
    options = {"require": ["exp", "race", "aud"]}
    try:
        claims = jwt.decode(
            token, secret(), algorithms=[ALGORITHM], audience=AUDIENCE, options=options
        )
    except jwt.ExpiredSignatureError:
        claims = jwt.decode(
            token,
            secret(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={**options, "verify_exp": False},
        )
        raise TokenExpired(str(claims["race"]), _time(claims["exp"])) from None
    except jwt.InvalidTokenError as error:
        raise TokenRefused(str(error)) from error
    label = claims.get("label", "")
    if not isinstance(claims["race"], str) or not isinstance(label, str):
        raise TokenRefused("race and label must be strings")
    return SpectatorClaims(claims["race"], _time(claims["exp"]), label[:MAX_LABEL])


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
