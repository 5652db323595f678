"""Admin forms: a race with its GPX course and an optional CSV start list."""

import base64
import binascii

from django import forms
from django.utils.html import format_html

from races.models import Race
from races.organizer.gpx import GPXError, ParsedCourse, check_gpx_size, parse_gpx
from races.organizer.sparkline import course_summary_html
from races.organizer.start_list import StartListError, StartListRow, parse_start_list

PREVIEW_BUTTON = "_preview"
PREVIEW_CODE = "preview"


class RaceAdminForm(forms.ModelForm):
    gpx_file = forms.FileField(
        required=False,
        label="Course (GPX)",
        help_text="A track or route in GPX 1.0 or 1.1. Uploading replaces the current course.",
    )
    # Holds an uploaded GPX between "Preview course" and "Save", so it is not re-uploaded.
    gpx_cached = forms.CharField(required=False, widget=forms.HiddenInput)
    gpx_cached_name = forms.CharField(required=False, widget=forms.HiddenInput)
    start_list_file = forms.FileField(
        required=False,
        label="Start list (CSV)",
        help_text="Columns bib, name, gender, and optionally category and pace (mm:ss per km). "
        "Replaces the athletes below; nothing is imported if any row is bad.",
    )
    # Holds a valid start list between "Preview course" (or a refused save) and "Save".
    start_list_cached = forms.CharField(required=False, widget=forms.HiddenInput)
    start_list_cached_name = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Race
        fields = [
            "name",
            "slug",
            "scheduled_start",
            "tracking",
            "time_compression",
            "tick_seconds",
            "seed",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gpx_name: str | None = None
        self.gpx_data: bytes | None = None
        self.parsed_course: ParsedCourse | None = None
        self.start_list_rows: list[StartListRow] | None = None
        self.previewing = False
        if "tracking" in self.fields:
            # Forms posted without it (scripts, older pages) mean what they always did.
            self.fields["tracking"].required = False

    def clean_tracking(self) -> str:
        return self.cleaned_data.get("tracking") or Race.Tracking.SIMULATED

    @property
    def preview_requested(self) -> bool:
        return PREVIEW_BUTTON in self.data

    def clean(self):
        cleaned = super().clean()
        reason = self.instance.setup_locked_reason() if self.instance.pk else ""
        if reason:  # a running or finished race: refuse uploads before reading them
            for field in ("gpx_file", "start_list_file"):
                if cleaned.get(field) or cleaned.get(field.replace("_file", "_cached")):
                    # Also at the top: a page opened before the race started still shows
                    # the file inputs, the page rendered now does not.
                    self.add_error(None, f"Not imported, nothing changed. {reason}")
                    break
            return cleaned
        try:
            name, data = self._course_upload(cleaned)
            if data is not None:
                self.parsed_course = parse_gpx(data)
        except GPXError as error:
            self.add_error("gpx_file", str(error))
        else:
            if data is not None:
                self.gpx_name, self.gpx_data = name, data
                self.cache_course_for_save()
                if self.preview_requested:
                    self["gpx_file"].help_text = course_summary_html(self.parsed_course)
            elif not (self.instance.pk and hasattr(self.instance, "course")):
                self.add_error("gpx_file", "A race needs a course: choose a GPX file.")
        self._clean_start_list(cleaned)
        if self.preview_requested:
            # Not an error: the admin shows the page again instead of saving (RaceAdmin
            # hides this marker and says "Preview" as a normal message).
            self.previewing = True
            raise forms.ValidationError("Preview only: nothing saved yet.", code=PREVIEW_CODE)
        return cleaned

    def _course_upload(self, cleaned: dict) -> tuple[str | None, bytes | None]:
        upload = cleaned.get("gpx_file")
        if upload:
            check_gpx_size(upload.size)  # before the upload is read into memory
            return upload.name, upload.read()
        if cleaned.get("gpx_cached"):
            try:
                data = base64.b64decode(cleaned["gpx_cached"], validate=True)
            except binascii.Error as error:
                message = "The previewed course was damaged; choose the file again."
                raise GPXError(message) from error
            return cleaned.get("gpx_cached_name") or "course.gpx", data
        return None, None

    def _clean_start_list(self, cleaned: dict) -> None:
        upload = cleaned.get("start_list_file")
        if upload:
            name, raw = upload.name, upload.read()
        elif cleaned.get("start_list_cached"):
            name = cleaned.get("start_list_cached_name") or "start-list.csv"
            try:
                raw = base64.b64decode(cleaned["start_list_cached"], validate=True)
            except binascii.Error:
                self.add_error(
                    "start_list_file", "The kept start list was damaged; choose it again."
                )
                return
        else:
            return
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.add_error("start_list_file", "The start list is not UTF-8 text.")
            return
        try:
            self.start_list_rows = parse_start_list(text)
        except StartListError as error:
            self.add_error("start_list_file", error.problems)
            return
        self._keep_start_list(name, raw)

    def _keep_start_list(self, name: str, raw: bytes) -> None:
        """Carry a valid start list through a preview or a refused save, like the GPX."""
        self.data = self.data.copy()
        self.data["start_list_cached"] = base64.b64encode(raw).decode("ascii")
        self.data["start_list_cached_name"] = name
        self["start_list_file"].help_text = format_html(
            "<strong>{}</strong>: {} athletes, kept for saving; choose another file to replace it.",
            name,
            len(self.start_list_rows or []),
        )

    def cache_course_for_save(self) -> None:
        """Keep the validated GPX in the re-rendered form after a preview."""
        if self.gpx_data is not None:
            self.data = self.data.copy()
            self.data["gpx_cached"] = base64.b64encode(self.gpx_data).decode("ascii")
            self.data["gpx_cached_name"] = self.gpx_name
