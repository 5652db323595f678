"""Who organizes and who watches: organizations, their staff, revoked share links and
the audit trail (races.spectators.access and races.operations.audit read them)."""

from django.conf import settings
from django.db import models


class Organization(models.Model):
    """An organizer: its staff accounts see and change only its own races (superusers: all)."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OrganizerMembership(models.Model):
    """Puts one staff account in one organization (races.spectators.access reads it)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organizer_membership"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization}"


class RevokedSpectatorLabel(models.Model):
    """Share links of a race minted with this label stop working from `revoked_at` on.

    The revocation pattern issue 14's device tokens can follow: a token carries a label,
    a row here (race, label, revoked_at) withdraws every token with that label at once,
    and open sockets learn it on their next check (races.spectators.access).
    """

    race = models.ForeignKey("races.Race", on_delete=models.CASCADE, related_name="revoked_labels")
    label = models.CharField(max_length=100)
    revoked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["race", "label"], name="revoked_label_unique")
        ]

    def __str__(self) -> str:
        return f"{self.race_id}: {self.label} revoked"


class SpectatorConnection(models.Model):
    """One spectator socket: written once on connect, once on disconnect (no per-frame write)."""

    race_slug = models.CharField(max_length=80, db_index=True)
    endpoint = models.CharField(max_length=16)
    address = models.CharField(max_length=64, blank=True)
    label = models.CharField(max_length=100, blank=True, help_text="The share link's label.")
    username = models.CharField(max_length=150, blank=True)
    connected_at = models.DateTimeField(db_index=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    close_code = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-connected_at"]

    def __str__(self) -> str:
        return f"{self.race_slug} from {self.address or '?'} at {self.connected_at:%Y-%m-%d %H:%M}"

    @property
    def duration_s(self) -> float | None:
        if self.disconnected_at is None:
            return None
        return (self.disconnected_at - self.connected_at).total_seconds()


class OrganizerAction(models.Model):
    """Start, stop, reset, start-list change, DNF...: who did what to which race, when."""

    at = models.DateTimeField(db_index=True)
    username = models.CharField(max_length=150)
    race_slug = models.CharField(max_length=80, db_index=True)
    action = models.CharField(max_length=32)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.action} {self.race_slug}"
