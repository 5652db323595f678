"""What the relay writes while a race runs: positions, the frame counter, athletes' latest state."""

from django.db import models

from races.models.race import Athlete, Race


class Position(models.Model):
    """One position of one athlete, as it came through the race's fanout. Relay-written."""

    # No index of its own: each of the indexes below starts with the race (one index less
    # to write per position, 1,000 a second per race at the design load).
    #
    # No foreign-key constraints in the database (Django still deletes a race's positions
    # with it): PostgreSQL checked both references of each of a frame's 1,000 positions at
    # commit, 9.5-14.5 ms of every frame's store before it may be sent, against 0.8 ms
    # without (a copy of this table, 1,000-row COPY then COMMIT, median of 15, 2026-12-01).
    # The relay writes positions only under the race's row lock while the race is live;
    # athletes can be deleted only while the race's setup is editable (no positions yet);
    # a race deleted while it runs loses its positions with it, and any a relay committed
    # meanwhile once the delete commits (`lifecycle.race_deleted`).
    race = models.ForeignKey(
        Race,
        on_delete=models.CASCADE,
        related_name="positions",
        db_index=False,
        db_constraint=False,
    )
    athlete = models.ForeignKey(
        Athlete, on_delete=models.CASCADE, related_name="positions", db_constraint=False
    )
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
    """One athlete's latest state in the spectator protocol's ATHLETE form (relay-written).

    Every row of a running race is rewritten once a second. On PostgreSQL the table keeps
    free room in each page (fillfactor, migration 0010) so that the rewrite stays in the
    page (a HOT update: no index entry, the old version pruned in place). Measured with a
    1,000-athlete race, 59 frames: with PostgreSQL's default (full pages) 6 % of the
    updates were HOT, the table grew to 130 MB for 6,000 live rows, and storing the states
    took 19-25 ms a frame; with fillfactor 40, 98.5 % HOT, 12 MB, 16-20 ms (single runs in
    one process; the size is the clear gain).
    """

    athlete = models.OneToOneField(
        Athlete, on_delete=models.CASCADE, primary_key=True, related_name="live"
    )
    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="live_athletes")
    seq = models.BigIntegerField(help_text="seq of the athlete's newest position.")
    frame = models.BigIntegerField()
    state = models.JSONField()

    def __str__(self) -> str:
        return f"{self.athlete_id} @ frame {self.frame}"
