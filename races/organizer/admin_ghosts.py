"""Ghost pacers in the race's admin page: the cut-off, the course record, target times."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin

from races.models import Ghost

_LINE = re.compile(r"^\s*(?P<name>.+?)\s*=\s*(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{2})\s*$")


def format_race_time(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class CheckpointTimesField(forms.CharField):
    """`{checkpoint name: race seconds}` edited as lines `CP name = H:MM:SS`."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 28, "placeholder": "CP1 = 1:30:00"})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{name} = {format_race_time(s)}" for name, s in value.items())
        return value

    def to_python(self, value) -> dict:
        if isinstance(value, dict):
            return value
        times: dict[str, float] = {}
        for number, line in enumerate((value or "").splitlines(), start=1):
            if not line.strip():
                continue
            match = _LINE.match(line)
            if match is None:
                raise forms.ValidationError(
                    f"Line {number}: write “checkpoint name = H:MM:SS”, not {line.strip()!r}."
                )
            h, m, s = (int(match[k] or 0) for k in ("h", "m", "s"))
            times[match["name"]] = float(h * 3600 + m * 60 + s)
        return times


class GhostForm(forms.ModelForm):
    checkpoint_times = CheckpointTimesField(
        required=False,
        label="Checkpoint times",
        help_text="Cut-offs: one line per checkpoint, “name = H:MM:SS” of race time.",
    )

    class Meta:
        model = Ghost
        fields = ["kind", "name", "finish_time", "checkpoint_times"]


class GhostInline(admin.TabularInline):
    """Editable in any status: a ghost changes no athlete's state, only what pages draw
    (pages open from then on get the new schedule)."""

    model = Ghost
    form = GhostForm
    extra = 0
    verbose_name = "ghost pacer"
    verbose_name_plural = (
        "Ghost pacers (shown on the map, profile and board; never ranked, never in results)"
    )
