"""The race data model: a race, its course, checkpoints, start list and positions."""

import math
import random

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import NoReverseMatch, reverse

from races import wire


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


def random_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


class Race(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        STOPPED = "stopped", "Stopped"

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public: listed for everyone"
        UNLISTED = "unlisted", "Unlisted: anyone with the link, never listed"
        PRIVATE = "private", "Private: only with a share link or a staff login"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="Wall-clock time the race clock counts from."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    time_compression = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(1000.0)],
        help_text="Race seconds per wall-clock second: 60 shows an hour of race in a minute.",
    )
    seed = models.BigIntegerField(default=random_seed, help_text="Makes the simulation repeatable.")
    tick_seconds = models.FloatField(
        default=5.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(600.0)],
        help_text="Race-clock seconds between two positions of an athlete.",
    )
    generation = models.PositiveIntegerField(
        default=0, help_text="Bumped on every start, stop and reset; stale simulations stop."
    )
    # Who is publishing this race's positions, how far they got, when they last said so.
    # Written by the simulation (races/simulation/driver.py): one owner at a time, so a restarted
    # or duplicated segment task never publishes a race twice.
    sim_owner = models.CharField(max_length=64, blank=True, default="", editable=False)
    sim_tick = models.IntegerField(default=-1, editable=False)
    sim_heartbeat = models.DateTimeField(null=True, blank=True, editable=False)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="races",
        help_text="Whose race this is; empty = only superusers organize it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """The spectator page, or "" for a race whose stored slug no URL can carry.

        Rows written before the slug was validated may hold one ("Bad Slug!"); a page that
        lists them must still render instead of answering 500.
        """
        try:
            return reverse("race-detail", args=[self.slug])
        except NoReverseMatch:
            return ""

    def clean(self) -> None:
        """Checks beyond the fields' own validators (the admin and import_race both run this).

        Every organizer input goes through `full_clean`, so this is the one place that says
        what a valid race is; a NaN would slip past the range validators (NaN < 1 is False).
        """
        errors = {}
        for field in ("time_compression", "tick_seconds"):
            value = getattr(self, field)
            if value is not None and not math.isfinite(value):
                errors[field] = "Enter a finite number."
        if errors:
            raise ValidationError(errors)

    def unique_error_message(self, model_class, unique_check):
        if tuple(unique_check) == ("slug",):
            return ValidationError(
                f"A race with the slug {self.slug!r} already exists: choose another slug.",
                code="unique",
            )
        return super().unique_error_message(model_class, unique_check)

    @property
    def setup_editable(self) -> bool:
        """Course, start list and simulation settings change only before the race runs."""
        return self.status in (Race.Status.DRAFT, Race.Status.SCHEDULED)

    def setup_locked_reason(self) -> str:
        """Why the setup cannot change now, and how to change it anyway ("" when it can)."""
        if self.setup_editable:
            return ""
        return (
            f"{self.name} is {self.get_status_display().lower()}: its course, start list and "
            "simulation settings are fixed, because its positions refer to them. "
            + (
                "Stop it, then reset it to draft to change them (Reset deletes its positions)."
                if self.status == Race.Status.RUNNING
                else "Reset it to draft to change them (Reset deletes its positions)."
            )
        )

    @property
    def group_name(self) -> str:
        """The Channels group every spectator of this race listens on."""
        return wire.race_group(self.slug)

    @property
    def exchange_name(self) -> str:
        """The RabbitMQ fanout exchange every position of this race is published to."""
        return wire.exchange_name(self.slug)


class Course(models.Model):
    """The parsed GPX course. Points are stored once, so no request re-parses GPX."""

    race = models.OneToOneField(Race, on_delete=models.CASCADE, related_name="course")
    gpx_filename = models.CharField(max_length=255)
    gpx_source = models.BinaryField(help_text="The uploaded GPX file, byte for byte.")
    points = models.JSONField(help_text="[[lat, lon, elevation or null, distance_m], ...]")
    length_m = models.FloatField()
    climb_m = models.FloatField()
    descent_m = models.FloatField()
    min_elevation_m = models.FloatField(null=True)
    max_elevation_m = models.FloatField(null=True)
    bounds = models.JSONField(help_text="[south, west, north, east]")
    recorded_seconds = models.FloatField(
        null=True, help_text="Moving time of a recorded track; empty for a planned course."
    )

    def __str__(self) -> str:
        return f"{self.gpx_filename} ({self.length_m / 1000:.1f} km)"

    @property
    def point_count(self) -> int:
        return len(self.points)


class Checkpoint(models.Model):
    class Kind(models.TextChoices):
        START = "start", "Start"
        CHECKPOINT = "checkpoint", "Checkpoint"
        FINISH = "finish", "Finish"

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="checkpoints")
    order = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    distance_m = models.FloatField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHECKPOINT)

    class Meta:
        ordering = ["race", "order"]
        constraints = [
            models.UniqueConstraint(fields=["race", "order"], name="checkpoint_order_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.distance_m / 1000:.1f} km)"


class Athlete(models.Model):
    class Gender(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="athletes")
    bib = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    gender = models.CharField(max_length=8, choices=Gender.choices)
    category = models.CharField(max_length=32, blank=True)
    flat_pace_s_per_km = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(120.0), MaxValueValidator(1800.0)],
        help_text="Pace on flat ground in seconds per km; empty = drawn by the simulator.",
    )

    class Meta:
        ordering = ["race", "bib"]
        constraints = [models.UniqueConstraint(fields=["race", "bib"], name="bib_unique_per_race")]

    def __str__(self) -> str:
        return f"{self.bib} {self.name}"


class Position(models.Model):
    """One position of one athlete, as it came through the race's fanout. Relay-written."""

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="positions")
    athlete = models.ForeignKey(Athlete, on_delete=models.CASCADE, related_name="positions")
    seq = models.BigIntegerField()
    time = models.DateTimeField()
    latitude = models.FloatField()
    longitude = models.FloatField()
    elevation = models.FloatField(null=True)
    distance_m = models.FloatField()
    speed_mps = models.FloatField(null=True)
    event = models.CharField(max_length=16)
    frame = models.BigIntegerField(
        null=True, help_text="The spectator frame that carried this position (relay-set)."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["race", "seq"], name="position_seq_unique")]
        indexes = [
            models.Index(fields=["race", "athlete", "-seq"], name="position_latest_idx"),
            models.Index(fields=["race", "time"], name="position_time_idx"),
            models.Index(fields=["race", "frame"], name="position_frame_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.race_id}#{self.seq} {self.event}"


class LiveRace(models.Model):
    """The relay's frame counter for a race: the last frame whose state is stored.

    Written by the relay in the same transaction as the positions and athlete states of
    that frame, before the frame is sent, so a snapshot read from here is never behind
    any frame a spectator has received.
    """

    race = models.OneToOneField(
        Race, on_delete=models.CASCADE, primary_key=True, related_name="live"
    )
    frame = models.BigIntegerField(default=0)
    clock_s = models.FloatField(null=True, help_text="Race-clock seconds of the newest event.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.race_id} frame {self.frame}"


class LiveAthlete(models.Model):
    """One athlete's latest state in the spectator protocol's ATHLETE form (relay-written)."""

    athlete = models.OneToOneField(
        Athlete, on_delete=models.CASCADE, primary_key=True, related_name="live"
    )
    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="live_athletes")
    seq = models.BigIntegerField(help_text="seq of the athlete's newest position.")
    frame = models.BigIntegerField()
    state = models.JSONField()

    def __str__(self) -> str:
        return f"{self.athlete_id} @ frame {self.frame}"


class AthleteDecision(models.Model):
    """A race-control decision about one athlete: who decided what, when and why.

    Append-only: an undo is a row of its own (kind `undo`, `undoes` the decision it takes
    back), so the record keeps every step. The relay applies the decision to the live
    state (`races.organizer.decisions` sends it; `wire.decision_message` is its shape).
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
        """The decision as the relay gets it (races.wire.decision_message)."""
        return wire.decision_message(
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
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.race_id}: {len(self.alerts)} alerts"


class RevokedSpectatorLabel(models.Model):
    """Share links of a race minted with this label stop working from `revoked_at` on.

    The revocation pattern issue 14's device tokens can follow: a token carries a label,
    a row here (race, label, revoked_at) withdraws every token with that label at once,
    and open sockets learn it on their next check (races.spectators.access).
    """

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="revoked_labels")
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
