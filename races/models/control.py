"""Race control: the organizer's decisions about athletes and the alerts in force."""

from django.db import models

from races import wire, wire_decisions
from races.models.race import Athlete, Race


class AthleteDecision(models.Model):
    """A race-control decision about one athlete: who decided what, when and why.

    Append-only: an undo is a row of its own (kind `undo`, `undoes` the decision it takes
    back), so the record keeps every step. The relay applies the decision to the live
    state (`races.organizer.decisions` sends it; `wire_decisions.decision_message` is its shape).
    """

    class Kind(models.TextChoices):
        DNS = "dns", "Did not start"
        DNF = "dnf", "Did not finish"
        FINISH_TIME = "finish_time", "Finish time corrected"
        UNDO = "undo", "Decision undone"

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="decisions")
    athlete = models.ForeignKey(Athlete, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.CharField(max_length=300, blank=True)
    finish_s = models.FloatField(
        null=True, blank=True, help_text="Corrected finish time, race-clock seconds."
    )
    undoes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by"
    )
    decided_by = models.CharField(max_length=150, help_text="The organizer's user name.")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-pk"]
        indexes = [
            models.Index(fields=["race", "athlete", "-decided_at"], name="decision_latest_idx")
        ]

    def __str__(self) -> str:
        return f"{self.athlete} {self.get_kind_display()} by {self.decided_by}"

    def message(self) -> dict:
        """The decision as the relay gets it (races.wire_decisions.decision_message)."""
        return wire_decisions.decision_message(
            slug=self.race.slug,
            athlete_id=self.athlete_id,
            id=self.pk,
            kind=self.kind,
            reason=self.reason,
            finish_s=self.finish_s,
            by=self.decided_by,
            at=wire.iso(self.decided_at),
        )


class RaceAlerts(models.Model):
    """Race control's alerts in force for a race (relay-written, about once a second when
    they change; `races.organizer.race_alerts` holds the rules). Web processes read it."""

    race = models.OneToOneField(
        Race, on_delete=models.CASCADE, primary_key=True, related_name="alerts"
    )
    alerts = models.JSONField(default=list, help_text="Alert.as_dict() of each alert in force.")
    devices = models.JSONField(
        default=dict,
        help_text="A tracked race's trackers as the relay last heard of them: athlete id -> "
        "source, fix_time, battery_pct, accuracy_m (races.relay.tracker_fixes.Device). For "
        "race control only, never in the public athlete form.",
    )
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.race_id}: {len(self.alerts)} alerts"
