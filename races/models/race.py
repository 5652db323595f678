"""The race as the organizer sets it up: the race, its course, checkpoints and start list."""

import math
import random

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import NoReverseMatch, reverse

from races import wire
from races.models.access import Organization


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

    class Tracking(models.TextChoices):
        SIMULATED = "simulated", "Simulated: the built-in simulation moves the athletes"
        TRACKED = "tracked", "Tracked: positions come from the athletes' devices"

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
    tracking = models.CharField(
        max_length=16,
        choices=Tracking.choices,
        default=Tracking.SIMULATED,
        help_text="Who moves the athletes: the simulation, or real trackers.",
    )
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

    @property
    def simulated(self) -> bool:
        """Whether the built-in simulation moves the athletes (else: real trackers)."""
        return self.tracking != self.Tracking.TRACKED

    @property
    def clock_compression(self) -> float:
        """Race seconds per wall second: a tracked race runs in real time, whatever
        `time_compression` says (it only paces the simulation)."""
        return self.time_compression if self.simulated else 1.0

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
