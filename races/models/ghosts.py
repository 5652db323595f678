"""Ghost pacers: virtual athletes the organizer adds to a race (issue 19).

A ghost is a schedule, not an athlete: the cut-off (with a cut-off time per checkpoint),
the course record, a target time. It is never on the start list, so it is never ranked
and never in results or exports; spectators get its schedule once, in the snapshot's
course (`races.spectators.snapshots.ghost_summaries`), and the page moves it with the race
clock (`static/js/ghosts.js`): its position is a pure function of race time.
"""

import itertools
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models

from races.models.race import Race


class Ghost(models.Model):
    class Kind(models.TextChoices):
        CUTOFF = "cutoff", "Cut-off"
        RECORD = "record", "Course record"
        TARGET = "target", "Target time"

    race = models.ForeignKey(Race, on_delete=models.CASCADE, related_name="ghosts")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TARGET)
    name = models.CharField(
        max_length=60, blank=True, help_text="Shown to spectators; empty: the kind's name."
    )
    finish_time = models.DurationField(
        help_text="Race time at the finish (H:MM:SS): the last cut-off, the record, the target."
    )
    checkpoint_times = models.JSONField(
        default=dict,
        blank=True,
        help_text="Race time (seconds) at checkpoints, by checkpoint name: the cut-offs. "
        "Between them the ghost keeps an even effort over the course's profile.",
    )

    class Meta:
        ordering = ["race", "finish_time", "pk"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return self.name or self.get_kind_display()

    def clean(self) -> None:
        if self.finish_time is not None and self.finish_time <= timedelta(0):
            raise ValidationError({"finish_time": "A ghost needs a finish time after the start."})
        times = self.checkpoint_times or {}
        if not isinstance(times, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in times.values()
        ):
            raise ValidationError({"checkpoint_times": "Give a time after the start for each."})
        if self.race_id is None or not times:
            return
        known = {cp.name: cp.distance_m for cp in self.race.checkpoints.all()}
        unknown = sorted(set(times) - set(known))
        if unknown:
            raise ValidationError(
                {"checkpoint_times": f"No checkpoint named {', '.join(map(repr, unknown))}."}
            )
        ordered = sorted(times.items(), key=lambda item: known[item[0]])
        finish_s = self.finish_time.total_seconds() if self.finish_time else None
        seconds = [s for _, s in ordered] + ([finish_s] if finish_s is not None else [])
        if any(b <= a for a, b in itertools.pairwise(seconds)):
            raise ValidationError(
                {"checkpoint_times": "Times must grow along the course, up to the finish time."}
            )

    def anchors(self, length_m: float, checkpoint_distances: dict[str, float]) -> list[tuple]:
        """(distance, race seconds) the ghost passes: start, its checkpoint times, finish."""
        points = [(0.0, 0.0)]
        for name, seconds in (self.checkpoint_times or {}).items():
            if name in checkpoint_distances and 0 < checkpoint_distances[name] < length_m:
                points.append((checkpoint_distances[name], float(seconds)))
        points.append((length_m, self.finish_time.total_seconds()))
        return sorted(points)
