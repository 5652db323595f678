"""The audit trail: spectator connections and organizer actions, kept AUDIT_RETENTION_DAYS.

A spectator socket costs two writes in all: a row when it is admitted, one update when
it closes; frames never touch it. Organizer actions are one row each. A failing audit
write is logged, never passed on: a spectator is not dropped because the trail is down.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from races.models import OrganizerAction, SpectatorConnection

logger = logging.getLogger(__name__)

ACTIONS = (
    "start",
    "stop",
    "reset",
    "start_list",
    "dns",
    "dnf",
    "finish_time",
    "undo",
    "visibility",
    "share_link",
    "revoke",
    "device_token",  # a tracker device token created (races.trackers.admin)
    "device_revoke",  # ... and revoked
    "gpx_recording",  # an athlete's recorded GPX joined a tracked race
)


@dataclass
class Visit:
    """One socket's audit row, written on admission and on close."""

    endpoint: str
    address: str
    record_id: int | None = None

    def admitted(self, race_slug: str, label: str = "", username: str = "") -> None:
        try:
            row = SpectatorConnection.objects.create(
                race_slug=race_slug,
                endpoint=self.endpoint,
                address=self.address[:64],
                label=label,
                username=username,
                connected_at=timezone.now(),
            )
        except DatabaseError:
            logger.exception("could not record a spectator connection")
            return
        self.record_id = row.pk

    def ended(self, close_code: int | None) -> None:
        if self.record_id is None:
            return
        try:
            SpectatorConnection.objects.filter(pk=self.record_id).update(
                disconnected_at=timezone.now(), close_code=close_code
            )
        except DatabaseError:
            logger.exception("could not record the end of a spectator connection")


def scope_address(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def organizer_action(user: Any, race_slug: str, action: str, detail: str = "") -> None:
    """Record that `user` did `action` (one of ACTIONS) to race `race_slug`."""
    username = user.get_username() if user is not None and user.is_authenticated else "system"
    OrganizerAction.objects.create(
        at=timezone.now(), username=username, race_slug=race_slug, action=action, detail=detail
    )


def prune(now=None) -> tuple[int, int]:
    """Delete entries older than AUDIT_RETENTION_DAYS: (connections, actions) deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    connections, _ = SpectatorConnection.objects.filter(connected_at__lt=cutoff).delete()
    actions, _ = OrganizerAction.objects.filter(at__lt=cutoff).delete()
    return connections, actions


def connections_csv(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["connected_at", "disconnected_at", "duration_s", "race", "endpoint", "address",
         "label", "user", "close_code"]
    )  # fmt: skip
    for row in rows:
        writer.writerow(
            [_iso(row.connected_at), _iso(row.disconnected_at), row.duration_s, row.race_slug,
             row.endpoint, row.address, _cell(row.label), _cell(row.username), row.close_code]
        )  # fmt: skip
    return out.getvalue()


def actions_csv(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "user", "race", "action", "detail"])
    for row in rows:
        writer.writerow(
            [_iso(row.at), _cell(row.username), row.race_slug, row.action, _cell(row.detail)]
        )
    return out.getvalue()


def _iso(value) -> str:
    return value.isoformat() if value else ""


def spreadsheet_cell(text: str) -> str:
    """No spreadsheet formula injection from a label or name an organizer typed."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


_cell = spreadsheet_cell
