"""Every RaceWeb Prometheus metric, defined once, with the helpers that record them.

Three kinds of process export them: web (daphne; `/metrics` through django-prometheus),
relay (`manage.py relay`) and the Celery worker (both on `METRICS_PORT`, see
`races.operations.metrics_server`). A process exports every metric here, but only moves the ones
of its own role; the others stay at zero (labelled ones stay absent).

Names follow Prometheus conventions: base units (`_seconds`, `_bytes`), `_total` on
counters, a `raceweb_` prefix and the role (`relay_`, `worker_`) after it.

Cardinality: `endpoint` and `reason` take a few fixed values (unknown ones are recorded
as `other`). `race` (the race slug) is unbounded over the life of a deployment, so each
process keeps race series only for the `MAX_RACE_SERIES` races it touched most recently
and for as long as the race runs: `forget_race(slug)` drops them when a race ends, and
the oldest race's series are dropped when a new race would exceed the bound. In practice
a few races run at once, so a process exports a few dozen race series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `_created` series double the series count of every counter and histogram for a value
# that rate() never needs.
disable_created_metrics()

logger = logging.getLogger(__name__)

MAX_RACE_SERIES = 50

# Spectator WebSocket endpoints: ws/races/<slug>/, the race-list socket, and the
# seed-compatible ws?race=... stream.
ENDPOINTS = ("race", "races", "seed")
# Why the server closed or refused a socket; anything else is recorded as "other".
WEBSOCKET_ERRORS = (
    "unknown_race",  # 4404
    "bad_message",  # 4400: unintelligible, binary or oversized client message
    "origin",  # handshake from a browser origin that is not allowed
    "layer_unavailable",  # channel layer (broker) did not answer in time: 1011
    "slow_client",  # dropped for not reading (more than WS_SEND_BUFFER_BYTES unsent)
    "link_expired",  # 4401: the private race's share link expired
    "link_revoked",  # 4403: the organizer revoked the share link's label
    "rate_limited",  # too many sockets from one address, or messages on one: 4429
    "other",  # an unexpected server error (the socket closes with 1011)
)

# Latency buckets from 5 ms to 30 s: the SLO line (500 ms) falls on a bucket bound.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SIZE_BUCKETS = tuple(float(1024 * 4**n) for n in range(9))  # 1 KiB .. 64 MiB

# --- web (daphne) --------------------------------------------------------------------
WEBSOCKET_CONNECTIONS = Gauge(
    "raceweb_websocket_connections",
    "Open spectator WebSocket connections.",
    ["endpoint"],
)
WEBSOCKET_CONNECTS = Counter(
    "raceweb_websocket_connects_total",
    "Spectator WebSocket connections accepted.",
    ["endpoint"],
)
WEBSOCKET_DISCONNECTS = Counter(
    "raceweb_websocket_disconnects_total",
    "Accepted spectator WebSocket connections that closed, for any reason.",
    ["endpoint"],
)
WEBSOCKET_ERRORS_TOTAL = Counter(
    "raceweb_websocket_errors_total",
    "Spectator WebSockets refused or closed by the server because something went wrong.",
    ["endpoint", "reason"],
)
FRAMES_SENT = Counter(
    "raceweb_frames_sent_total",
    "WebSocket text frames sent to spectators (one frame to N sockets counts N).",
    ["endpoint"],
)
POSITIONS_SENT = Counter(
    "raceweb_positions_sent_total",
    "Athlete positions sent to spectators (one position to N sockets counts N).",
    ["endpoint"],
)
POSITION_DELIVERY_SECONDS = Histogram(
    "raceweb_position_delivery_seconds",
    "From the wall time a position was due (its event time on the race clock) to the "
    "moment this process handed the frame carrying it to its spectators' sockets.",
    ["race"],
    buckets=LATENCY_BUCKETS,
)
FRAME_RESYNCS = Counter(
    "raceweb_frame_resyncs_total",
    "Gaps in a race's frame numbers seen by a web process, each answered with a fresh "
    "snapshot to its spectators (frames lost between relay and web).",
)
SOCKET_WRITER_FALLBACKS = Counter(
    "raceweb_socket_writer_fallbacks_total",
    "Frames to daphne sockets sent by the ASGI send as the fast path lacks a library "
    "internal (missing_internal) or failed (write_error); one frame to N sockets counts N.",
    ["reason"],
)
SNAPSHOT_SIZE_BYTES = Histogram(
    "raceweb_snapshot_size_bytes",
    "Size of the serialized snapshot sent to a spectator on connect or resume.",
    buckets=SIZE_BUCKETS,
)
SNAPSHOT_BUILD_SECONDS = Histogram(
    "raceweb_snapshot_build_seconds",
    "Time to build and serialize one snapshot.",
    buckets=FAST_BUCKETS,
)

# --- relay ---------------------------------------------------------------------------
RELAY_POSITIONS_CONSUMED = Counter(
    "raceweb_relay_positions_consumed_total",
    "Positions the relay received from a race's queue.",
    ["race"],
)
RELAY_POSITIONS_STORED = Counter(
    "raceweb_relay_positions_stored_total",
    "Positions the relay wrote to the database.",
    ["race"],
)
RELAY_POSITIONS_DEDUPLICATED = Counter(
    "raceweb_relay_positions_deduplicated_total",
    "Positions the relay dropped because their seq was already stored.",
    ["race"],
)
RELAY_BATCH_INSERT_SECONDS = Histogram(
    "raceweb_relay_batch_insert_seconds",
    "Time to insert one batch of positions.",
    buckets=FAST_BUCKETS,
)
RELAY_GROUP_SEND_SECONDS = Histogram(
    "raceweb_relay_group_send_seconds",
    "Time of one channel-layer group_send of a frame.",
    buckets=FAST_BUCKETS,
)
RELAY_EVENTS_INVALID = Counter(
    "raceweb_relay_events_invalid_total",
    "Events the relay refused (not JSON, unknown athlete, impossible values).",
)
# Why the relay refused or ignored a tracker's fix (races.relay.tracker_fixes.REASONS).
RELAY_TRACKER_REFUSED = Counter(
    "raceweb_relay_tracker_refused_total",
    "Seq-less tracker fixes the relay refused or ignored, by reason (unknown athlete, "
    "time in the future or before the start, poor accuracy, impossible speed, not tracked).",
    ["reason"],
)
RELAY_POSITIONS_BY_SOURCE = Counter(
    "raceweb_relay_positions_total",
    "Positions the relay accepted, by source: the simulation, or a tracker "
    "(races.wire.TRACKER_SOURCES; `contract` = the old system's producers).",
    ["source"],
)
RACE_ALERTS = Counter(
    "raceweb_race_alerts_total",
    "Race-control alert episodes begun (an athlete entering an alert kind; counted once).",
    ["kind"],
)
RELAY_STORE_FAILURES = Counter(
    "raceweb_relay_store_failures_total",
    "Batches whose database write failed (retried from the queue).",
)
RELAY_GROUP_SEND_TIMEOUTS = Counter(
    "raceweb_relay_group_send_timeouts_total",
    "group_send calls still unanswered after their timeout (broker slow or away).",
)
RELAY_GROUP_SENDS_DROPPED = Counter(
    "raceweb_relay_group_sends_dropped_total",
    "Frames not sent because too many group_send calls were pending (spectators resync).",
)
RELAY_LAG_SECONDS = Gauge(
    "raceweb_relay_lag_seconds",
    "How far behind its due wall time the newest position the relay consumed was.",
    ["race"],
)

# --- Celery worker (simulation) -----------------------------------------------------
WORKER_POSITIONS_PUBLISHED = Counter(
    "raceweb_worker_positions_published_total",
    "Positions published to a race's fanout exchange and confirmed by the broker.",
    ["race"],
)
WORKER_PUBLISH_CONFIRM_SECONDS = Histogram(
    "raceweb_worker_publish_confirm_seconds",
    "From publishing a tick's batch to the broker confirming all of it.",
    buckets=FAST_BUCKETS,
)
WORKER_TICK_SECONDS = Histogram(
    "raceweb_worker_tick_seconds",
    "Time to compute and publish one simulation tick of a race.",
    buckets=FAST_BUCKETS,
)
WORKER_TICK_OVERRUNS = Counter(
    "raceweb_worker_tick_overruns_total",
    "Ticks that took longer than the wall time between two ticks.",
)
WORKER_LATE_TICKS = Counter(
    "raceweb_worker_late_ticks_total",
    "Ticks published after the next one was due (a worker that fell behind catches up).",
    ["race"],
)
WORKER_TICK_OVERRUN_SECONDS = Counter(
    "raceweb_worker_tick_overrun_seconds_total",
    "Time by which ticks overran the wall time between two ticks, summed.",
)

RACE_LABELLED = (
    POSITION_DELIVERY_SECONDS,
    RELAY_POSITIONS_CONSUMED,
    RELAY_POSITIONS_STORED,
    RELAY_POSITIONS_DEDUPLICATED,
    RELAY_LAG_SECONDS,
    WORKER_POSITIONS_PUBLISHED,
    WORKER_LATE_TICKS,
)


class _RaceSeries:
    """The races whose series this process exports, most recently used last."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._races: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def touch(self, race: str) -> str:
        with self._lock:
            self._races[race] = None
            self._races.move_to_end(race)
            evicted = []
            while len(self._races) > self.limit:
                evicted.append(self._races.popitem(last=False)[0])
        for old in evicted:
            _remove_series(old)
        return race

    def forget(self, race: str) -> None:
        with self._lock:
            self._races.pop(race, None)
        _remove_series(race)


def _remove_series(race: str) -> None:
    for metric in RACE_LABELLED:
        metric.remove(race)


race_series = _RaceSeries(MAX_RACE_SERIES)


def forget_race(race: str) -> None:
    """Drop every series of a race that ended; call it when its last frame went out."""
    race_series.forget(race)


def _endpoint(endpoint: str) -> str:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown WebSocket endpoint {endpoint!r}; expected one of {ENDPOINTS}")
    return endpoint


# --- recording helpers: web ------------------------------------------------------------
def websocket_connected(endpoint: str) -> None:
    """An accepted spectator socket. Call only after accept(), so refusals do not count."""
    WEBSOCKET_CONNECTS.labels(_endpoint(endpoint)).inc()
    WEBSOCKET_CONNECTIONS.labels(endpoint).inc()


def websocket_disconnected(endpoint: str) -> None:
    """An accepted socket closed; pair each call with one websocket_connected()."""
    WEBSOCKET_DISCONNECTS.labels(_endpoint(endpoint)).inc()
    WEBSOCKET_CONNECTIONS.labels(endpoint).dec()


def websocket_error(endpoint: str, reason: str) -> None:
    """The server refused or closed a socket because something went wrong."""
    if reason not in WEBSOCKET_ERRORS:
        reason = "other"
    WEBSOCKET_ERRORS_TOTAL.labels(_endpoint(endpoint), reason).inc()


def frames_sent(endpoint: str, sockets: int, positions_per_frame: int) -> None:
    """One frame written to `sockets` spectators, carrying `positions_per_frame` positions."""
    FRAMES_SENT.labels(_endpoint(endpoint)).inc(sockets)
    if positions_per_frame:
        POSITIONS_SENT.labels(endpoint).inc(sockets * positions_per_frame)


def observe_delivery(
    race: str, due_counts: Iterable[tuple[float, int]], sent_at: float | None = None
) -> None:
    """Record position-to-send latency for the positions of a frame just sent.

    `due_counts` pairs the Unix time positions were due with how many were due then
    (`due_counts()` builds it; one tick of a race shares one due time).
    """
    sent_at = time.time() if sent_at is None else sent_at
    histogram = POSITION_DELIVERY_SECONDS.labels(race_series.touch(race))
    for due, count in due_counts:
        # A position published ahead of its due time counts as delivered on time.
        latency = max(sent_at - due, 0.0)
        for _ in range(count):
            histogram.observe(latency)


def due_wall_time(started_at: float, event_time: float, time_compression: float) -> float:
    """The Unix time at which a position with race-clock `event_time` was due.

    Event times run on the race clock, `time_compression` times faster than the wall
    clock from `started_at` (DESIGN.md), so the wall time a position belongs to is
    `started_at + (event_time - started_at) / time_compression`.
    """
    return started_at + (event_time - started_at) / time_compression


def due_counts(
    event_times: Iterable[float], started_at: float | None, time_compression: float
) -> list[tuple[float, int]]:
    """[(due Unix time, positions due then), ...] for a batch of event times.

    Without a start time (a race fed by real trackers), an event is due at its own time.
    """
    counts: dict[float, int] = {}
    for event_time in event_times:
        if started_at is not None:
            event_time = due_wall_time(started_at, event_time, time_compression)
        due = round(event_time, 3)
        counts[due] = counts.get(due, 0) + 1
    return sorted(counts.items())


def observe_snapshot(size_bytes: int, build_seconds: float) -> None:
    SNAPSHOT_SIZE_BYTES.observe(size_bytes)
    SNAPSHOT_BUILD_SECONDS.observe(build_seconds)


# --- recording helpers: relay -------------------------------------------------------
def relay_consumed(race: str, positions: int = 1) -> None:
    RELAY_POSITIONS_CONSUMED.labels(race_series.touch(race)).inc(positions)


def relay_stored(race: str, positions: int) -> None:
    RELAY_POSITIONS_STORED.labels(race_series.touch(race)).inc(positions)


def relay_deduplicated(race: str, positions: int = 1) -> None:
    RELAY_POSITIONS_DEDUPLICATED.labels(race_series.touch(race)).inc(positions)


def relay_lag(race: str, due_time: float, now: float | None = None) -> None:
    """Record how late the newest consumed position of a race was (due_time: Unix time)."""
    now = time.time() if now is None else now
    RELAY_LAG_SECONDS.labels(race_series.touch(race)).set(max(now - due_time, 0.0))


# --- recording helpers: worker ------------------------------------------------------
def positions_published(race: str, positions: int) -> None:
    WORKER_POSITIONS_PUBLISHED.labels(race_series.touch(race)).inc(positions)


def ticks_published_late(race: str, ticks: int) -> None:
    WORKER_LATE_TICKS.labels(race_series.touch(race)).inc(ticks)


def tick_finished(duration_s: float, budget_s: float) -> None:
    """One tick took `duration_s`; the next one is due `budget_s` after it started."""
    WORKER_TICK_SECONDS.observe(duration_s)
    if duration_s > budget_s:
        WORKER_TICK_OVERRUNS.inc()
        WORKER_TICK_OVERRUN_SECONDS.inc(duration_s - budget_s)


# The tracker ingest's counters live in their own module (this one is near its bound);
# named here too, so "every metric here" (README's table, the web's /metrics) holds them.
from races.operations.tracker_metrics import (  # noqa: E402, F401
    TRACKER_FIXES_ACCEPTED,
    TRACKER_FIXES_IGNORED,
    TRACKER_REQUESTS_REFUSED,
)
