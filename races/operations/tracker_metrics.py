"""The tracker ingest's Prometheus metrics (races/trackers/), per source and reason.

Kept beside `races.operations.metrics` (which is near its 400-line bound) and named the
same way. Labels are bounded: `source` is one of `races.wire.TRACKER_SOURCES`, `reason`
one of the tuples below; anything else is recorded as `other`.
"""

from __future__ import annotations

from prometheus_client import Counter

from races.wire import TRACKER_SOURCES

# Answered 200 (apps would otherwise retry the fix forever), nothing published.
IGNORED_REASONS = (
    "race_not_running",  # the athlete's race is not running (draft, finished, stopped)
    "simulated_race",  # the race is moved by the simulation, not by trackers
    "before_start",  # a fix from before the race's start
    "in_future",  # more than a minute ahead of the server's clock
    "poor_accuracy",  # less accurate than TRACKER_MAX_ACCURACY_M
    "not_a_location",  # an OwnTracks message of another _type
    "other",
)
# Answered 4xx (or 503: the broker did not confirm; the app retries later).
REFUSED_REASONS = (
    "malformed",  # 400
    "unknown_token",  # 401
    "revoked_token",  # 403
    "too_large",  # 413
    "rate_limited",  # 429
    "unavailable",  # 503
    "other",
)

TRACKER_FIXES_ACCEPTED = Counter(
    "raceweb_tracker_fixes_accepted_total",
    "Tracker fixes published into their race's fanout and confirmed by the broker.",
    ["source"],
)
TRACKER_FIXES_IGNORED = Counter(
    "raceweb_tracker_fixes_ignored_total",
    "Tracker fixes answered 200 but not published (race not running, poor accuracy...).",
    ["source", "reason"],
)
TRACKER_REQUESTS_REFUSED = Counter(
    "raceweb_tracker_requests_refused_total",
    "Tracker requests refused (bad token, malformed, too large, rate limited...).",
    ["source", "reason"],
)


def _source(source: str) -> str:
    return source if source in TRACKER_SOURCES else "other"


def accepted(source: str, fixes: int = 1) -> None:
    TRACKER_FIXES_ACCEPTED.labels(_source(source)).inc(fixes)


def ignored(source: str, reason: str) -> None:
    reason = reason if reason in IGNORED_REASONS else "other"
    TRACKER_FIXES_IGNORED.labels(_source(source), reason).inc()


def refused(source: str, reason: str) -> None:
    reason = reason if reason in REFUSED_REASONS else "other"
    TRACKER_REQUESTS_REFUSED.labels(_source(source), reason).inc()
