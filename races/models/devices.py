"""Tracker device tokens: how a phone or GPS device says which athlete it carries."""

import secrets

from django.db import models

from races.models.race import Athlete

TOKEN_BYTES = 24  # 32 URL-safe characters: unguessable, short enough to type if need be


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class DeviceToken(models.Model):
    """One athlete's device: its token is the device id the tracking app sends.

    Revoked (not deleted) when a phone is lost or swapped: the row keeps saying whose it
    was, so the endpoints answer "revoked" (403) rather than "unknown" (401), the same
    distinction as a revoked share-link label (races.models.RevokedSpectatorLabel).
    """

    athlete = models.ForeignKey(Athlete, on_delete=models.CASCADE, related_name="device_tokens")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    label = models.CharField(
        max_length=100, blank=True, help_text='Which device ("Jane\'s phone", "watch").'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["athlete__race", "athlete__bib", "created_at"]

    def __str__(self) -> str:
        suffix = " (revoked)" if self.revoked_at else ""
        return f"{self.athlete}: {self.label or 'device'}{suffix}"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
