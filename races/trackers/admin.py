"""Device tokens in the admin: scoped to the organizer's races, with the exact setup of each
app (URL, device id) and a QR code of the Traccar Client URL for the phone; creating and
revoking a token are audited. The GPX upload of an athlete's recording is here too
(`races.trackers.recordings`).
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from races.models import Athlete, DeviceToken, Race
from races.operations import audit
from races.organizer.gpx import GPXError, check_gpx_size
from races.spectators import access
from races.trackers import recordings
from races.trackers.setup import app_setup, qr_svg, traccar_client_link


def organized_athletes(request: HttpRequest):
    return Athlete.objects.filter(race__in=access.organized_races(request.user)).select_related(
        "race"
    )


@admin.register(DeviceToken)
class DeviceTokenAdmin(admin.ModelAdmin):
    list_display = ["athlete", "race", "label", "state", "created_at"]
    list_filter = ["athlete__race__tracking", "revoked_at"]
    search_fields = ["athlete__name", "athlete__bib", "athlete__race__name", "label"]
    actions = ["revoke_tokens", "export_setup_csv"]
    change_list_template = "admin/races/devicetoken/change_list.html"

    def get_queryset(self, request):
        rows = super().get_queryset(request).select_related("athlete__race")
        return rows.filter(athlete__race__in=access.organized_races(request.user))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "athlete":
            kwargs["queryset"] = organized_athletes(request).order_by("race__name", "bib")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, token=None):
        if token is None:
            return ["athlete", "label"]
        return ["athlete", "label", "state", "created_at"]

    def get_readonly_fields(self, request, token=None):
        if token is None:
            return []
        return ["athlete", "state", "created_at"]

    @admin.display(description="Race", ordering="athlete__race__name")
    def race(self, token: DeviceToken) -> str:
        return token.athlete.race.name

    @admin.display(description="State", ordering="revoked_at")
    def state(self, token: DeviceToken) -> str:
        if token.revoked_at:
            return f"revoked {token.revoked_at:%Y-%m-%d %H:%M} (the apps get 403)"
        return "active"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        token = self.get_object(request, object_id)
        if token is not None and not token.revoked:
            link = traccar_client_link(request, token.token)
            extra_context.update(
                tracker_setup=app_setup(request, token.token),
                tracker_qr=qr_svg(link),  # segno's own SVG markup
                tracker_qr_text=link,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def has_change_permission(self, request, token=None):
        allowed = super().has_change_permission(request, token)
        return allowed and (token is None or access.can_organize(request.user, token.athlete.race))

    def has_delete_permission(self, request, token=None):
        return False  # revoke instead: a deleted token would answer "unknown", not "revoked"

    def save_model(self, request, token: DeviceToken, form, change: bool) -> None:
        if not access.can_organize(request.user, token.athlete.race):
            raise PermissionDenied
        super().save_model(request, token, form, change)
        if not change:
            detail = f"bib {token.athlete.bib} {token.label}".strip()
            audit.organizer_action(request.user, token.athlete.race.slug, "device_token", detail)

    @admin.action(description="Revoke selected device tokens")
    def revoke_tokens(self, request, queryset):
        now = timezone.now()
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoked_at = now
            token.save(update_fields=["revoked_at"])
            detail = f"bib {token.athlete.bib} {token.label}".strip()
            audit.organizer_action(request.user, token.athlete.race.slug, "device_revoke", detail)
            revoked += 1
        self.message_user(request, f"{revoked} device token(s) revoked.", messages.SUCCESS)

    @admin.action(description="Export selected tokens with each app's URL (CSV)")
    def export_setup_csv(self, request, queryset):
        out = io.StringIO()
        writer = csv.writer(out)
        apps = [a.app for a in app_setup(request, "token")]
        writer.writerow(["race", "bib", "name", "label", "token", *apps])
        for token in queryset.filter(revoked_at__isnull=True).order_by("athlete__bib"):
            athlete = token.athlete
            urls = [a.url for a in app_setup(request, token.token)]
            cells = [athlete.race.slug, athlete.bib, athlete.name, token.label]
            writer.writerow([*(audit.spreadsheet_cell(c) for c in cells), token.token, *urls])
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="device-tokens.csv"'
        return response

    # ---- an athlete's GPX recording, after the fact ------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view(self.recording_view)
        return [path("recording/", view, name="races_devicetoken_recording"), *super().get_urls()]

    def recording_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RecordingForm(request.POST or None, request.FILES or None, request=request)
        if request.method == "POST" and form.is_valid():
            athlete: Athlete = form.cleaned_data["athlete"]
            upload = form.cleaned_data["gpx"]
            try:
                check_gpx_size(upload.size)  # before the file is read into memory
                joined = recordings.join(athlete, upload.read())
            except (GPXError, recordings.RecordingRefused) as refused:
                form.add_error("gpx", str(refused))
            else:
                detail = f"bib {athlete.bib}: {joined}"
                audit.organizer_action(request.user, athlete.race.slug, "gpx_recording", detail)
                messages.success(request, f"{athlete}: {joined}.")
        return TemplateResponse(request, self._template, self._context(request, form))

    _template = "admin/races/devicetoken/recording.html"

    def _context(self, request: HttpRequest, form: forms.Form) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add an athlete's GPX recording",
            "form": form,
            "changelist_url": reverse("admin:races_devicetoken_changelist"),
        }


@admin.action(description="Create a device token for every athlete without one")
def create_device_tokens(modeladmin, request, queryset) -> None:
    """RaceAdmin's action: one token per athlete of the selected tracked races that has no
    active token (audited per race), so an organizer does not add hundreds by hand."""
    for race in queryset:
        if race.tracking != Race.Tracking.TRACKED:
            modeladmin.message_user(
                request, f"{race.name} is simulated: no device tokens.", messages.WARNING
            )
            continue
        active = DeviceToken.objects.filter(athlete__race=race, revoked_at__isnull=True)
        missing = race.athletes.exclude(pk__in=active.values("athlete_id"))
        created = DeviceToken.objects.bulk_create([DeviceToken(athlete=a) for a in missing])
        audit.organizer_action(request.user, race.slug, "device_token", f"{len(created)} created")
        modeladmin.message_user(
            request, f"{race.name}: {len(created)} device tokens created.", messages.SUCCESS
        )


class RecordingForm(forms.Form):
    athlete = forms.ModelChoiceField(queryset=Athlete.objects.none())
    gpx = forms.FileField(label="GPX recording", help_text="The athlete's watch or phone track.")

    def __init__(self, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["athlete"].queryset = (
            organized_athletes(request)
            .filter(race__tracking=Race.Tracking.TRACKED)
            .order_by("race__name", "bib")
        )
