"""What an organizer pastes into each tracking app for one device token, and its QR code."""

from __future__ import annotations

from dataclasses import dataclass

import segno
from django.http import HttpRequest
from django.urls import reverse

# OsmAnd's online-tracking placeholders (Plugins > Trip recording > Online tracking).
OSMAND_PLACEHOLDERS = "&lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}&speed={5}&bearing={6}"


@dataclass(frozen=True)
class AppSetup:
    app: str
    url: str
    how: str


def app_setup(request: HttpRequest, token: str) -> list[AppSetup]:
    """Per app: the URL to paste (absolute, of the host the organizer is on) and where."""
    osmand = request.build_absolute_uri(reverse("ingest-osmand"))
    owntracks = request.build_absolute_uri(reverse("ingest-owntracks", args=[token]))
    traccar = request.build_absolute_uri(reverse("ingest-traccar"))
    return [
        AppSetup(
            "Traccar Client",
            osmand,
            f"Settings: Server URL = this URL, Device identifier = {token}.",
        ),
        AppSetup(
            "OsmAnd",
            f"{osmand}?id={token}{OSMAND_PLACEHOLDERS}",
            "Plugins > Trip recording > Online tracking: web address = this URL.",
        ),
        AppSetup(
            "OwnTracks",
            owntracks,
            "Preferences > Connection: Mode HTTP, URL = this URL (no user, no password).",
        ),
        AppSetup(
            "Traccar server",
            f"{traccar}?token={token}",
            "On the device in Traccar: attribute forward.url = this URL, forward.type = json "
            f"(or give the device the identifier {token} and forward every device to {traccar}).",
        ),
    ]


def traccar_client_link(request: HttpRequest, token: str) -> str:
    """What the QR code holds: the Traccar Client URL with the device id, for the phone."""
    return request.build_absolute_uri(reverse("ingest-osmand")) + f"?id={token}"


def qr_svg(text: str) -> str:
    """An inline SVG QR code (segno), scaled to be scanned off a laptop screen."""
    return segno.make(text, error="m").svg_inline(scale=4, border=2)
