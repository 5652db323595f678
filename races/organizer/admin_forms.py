"""Admin forms: a race with its GPX course and an optional CSV start list."""

import base64
import binascii

from django import forms

from races.models import Race
from races.organizer.gpx import GPXError, ParsedCourse, check_gpx_size, parse_gpx
from races.organizer.sparkline import course_summary_html
from races.organizer.start_list import StartListError, StartListRow, parse_start_list

PREVIEW_BUTTON = "_preview"


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

    class Meta:
        model = Race
        fields = ["name", "slug", "scheduled_start", "time_compression", "tick_seconds", "seed"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gpx_name: str | None = None
        self.gpx_data: bytes | None = None
        self.parsed_course: ParsedCourse | None = None
        self.start_list_rows: list[StartListRow] | None = None

    def clean(self):
        cleaned = super().clean()
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
                if PREVIEW_BUTTON in self.data:
                    self["gpx_file"].help_text = course_summary_html(self.parsed_course)
                    raise forms.ValidationError(
                        "Preview only: check the course summary below, then press Save."
                    )
            elif not (self.instance.pk and hasattr(self.instance, "course")):
                self.add_error("gpx_file", "A race needs a course: choose a GPX file.")
        self._clean_start_list(cleaned.get("start_list_file"))
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

    def _clean_start_list(self, upload) -> None:
        if not upload:
            return
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            self.add_error("start_list_file", "The start list is not UTF-8 text.")
            return
        try:
            self.start_list_rows = parse_start_list(text)
        except StartListError as error:
            self.add_error("start_list_file", error.problems)

    def cache_course_for_save(self) -> None:
        """Keep the validated GPX in the re-rendered form after a preview."""
        if self.gpx_data is not None:
            self.data = self.data.copy()
            self.data["gpx_cached"] = base64.b64encode(self.gpx_data).decode("ascii")
            self.data["gpx_cached_name"] = self.gpx_name
