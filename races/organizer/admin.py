"""The organizers' admin: races with course upload, start list, start/stop/reset."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.utils.html import format_html

from races.models import Athlete, Checkpoint, Race
from races.operations import audit
from races.organizer import lifecycle
from races.organizer.admin_access import RaceAccessMixin, RevokedLabelInline
from races.organizer.admin_forms import PREVIEW_BUTTON, PREVIEW_CODE, RaceAdminForm
from races.organizer.admin_ghosts import GhostInline
from races.organizer.admin_lifecycle import LifecycleAdminMixin, available_transitions
from races.organizer.course_import import attach_course, replace_start_list
from races.organizer.race_control import control_url
from races.organizer.sparkline import elevation_sparkline
from races.organizer.start_list import export_start_list
from races.trackers.admin import create_device_tokens

STATUS_COLOURS = {
    "draft": "#6c757d",
    "scheduled": "#0d6efd",
    "running": "#198754",
    "finished": "#212529",
    "stopped": "#dc3545",
}


# The audit trail's name of each lifecycle change (races.operations.audit.ACTIONS).
ACTION_OF = {
    lifecycle.start_race: "start",
    lifecycle.stop_race: "stop",
    lifecycle.reset_race: "reset",
}

ADD_HIDDEN = {"status_badge", "course_summary"}


LOCKED_FIELDS = ["slug", "scheduled_start", "tracking", "time_compression", "tick_seconds", "seed"]


class SetupInline(admin.TabularInline):
    """Athletes and checkpoints: editable in draft and scheduled, read-only afterwards."""

    def has_add_permission(self, request, race=None):
        return (race is None or race.setup_editable) and super().has_add_permission(request, race)

    def has_change_permission(self, request, race=None):
        editable = race is None or race.setup_editable
        return editable and super().has_change_permission(request, race)

    def has_delete_permission(self, request, race=None):
        editable = race is None or race.setup_editable
        return editable and super().has_delete_permission(request, race)


class AthleteInline(SetupInline):
    model = Athlete
    extra = 1
    fields = ["bib", "name", "gender", "category", "flat_pace_s_per_km"]


class CheckpointInline(SetupInline):
    model = Checkpoint
    extra = 0
    fields = ["order", "name", "distance_m", "kind"]


@admin.register(Race)
class RaceAdmin(RaceAccessMixin, LifecycleAdminMixin, admin.ModelAdmin):
    form = RaceAdminForm
    change_form_template = "admin/races/race/change_form.html"
    list_display = [
        "name",
        "status_badge",
        "athlete_count",
        "course_length",
        "started_at",
        "live_link",
    ]
    list_filter = ["status", "visibility"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["status_badge", "generation", "started_at", "finished_at", "course_summary"]
    inlines = [AthleteInline, CheckpointInline, GhostInline, RevokedLabelInline]
    actions = [
        "start_races",
        "stop_races",
        "reset_races",
        "export_start_list",
        create_device_tokens,
    ]
    fieldsets = [
        (None, {"fields": ["name", "slug", "status_badge", "scheduled_start"]}),
        ("Course", {"fields": ["gpx_file", "gpx_cached", "gpx_cached_name", "course_summary"]}),
        (
            "Start list",
            {"fields": ["start_list_file", "start_list_cached", "start_list_cached_name"]},
        ),
        (
            "Simulation or tracking",
            {"fields": ["tracking", "time_compression", "tick_seconds", "seed"]},
        ),
        ("Timing", {"fields": ["started_at", "finished_at", "generation"]}),
    ]

    def get_fieldsets(self, request, race=None):
        fieldsets = self._fieldsets_for(race)
        (name, options), *rest = fieldsets
        first = (name, {**options, "fields": [*options["fields"], *self.access_fields(request)]})
        return [first, *rest]

    def _fieldsets_for(self, race: Race | None):
        if race is None:  # nothing to summarise or time before the first save
            return [
                (name, {"fields": [f for f in opts["fields"] if f not in ADD_HIDDEN]})
                for name, opts in self.fieldsets
                if name != "Timing"
            ]
        if not race.setup_editable:
            return self._locked_fieldsets(race)
        return self.fieldsets

    def _locked_fieldsets(self, race: Race):
        """A running or finished race: the setup is shown, not offered for upload."""
        why = race.setup_locked_reason()
        read_only = f"Read-only while the race is {race.get_status_display().lower()}: see Course."
        return [
            (None, {"fields": ["name", "slug", "status_badge", "scheduled_start"]}),
            ("Course", {"fields": ["course_summary"], "description": why}),
            ("Start list", {"fields": ["start_list_summary"], "description": read_only}),
            (
                "Simulation or tracking",
                {"fields": ["tracking", "time_compression", "tick_seconds", "seed"]},
            ),
            ("Timing", {"fields": ["started_at", "finished_at", "generation"]}),
        ]

    def get_prepopulated_fields(self, request, race=None):
        locked = race is not None and not race.setup_editable
        return {} if locked else super().get_prepopulated_fields(request, race)

    def get_readonly_fields(self, request, race=None):
        fields = [*self.readonly_fields, "start_list_summary"]
        if race is not None and not race.setup_editable:
            fields += LOCKED_FIELDS
        return fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(athlete_total=Count("athletes"))

    @admin.display(description="Status", ordering="status")
    def status_badge(self, race: Race) -> str:
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px">{}</span>',
            STATUS_COLOURS.get(race.status, "#6c757d"),
            race.get_status_display(),
        )

    @admin.display(description="Athletes", ordering="athlete_total")
    def athlete_count(self, race: Race) -> int:
        return race.athlete_total

    @admin.display(description="Course")
    def course_length(self, race: Race) -> str:
        course = getattr(race, "course", None)
        return f"{course.length_m / 1000:.1f} km" if course else "—"

    @admin.display(description="Live page")
    def live_link(self, race: Race) -> str:
        url = race.get_absolute_url()
        if not url:
            return "— (slug not valid in a URL: change it)"
        return format_html('<a href="{}" target="_blank">watch</a>', url)

    @admin.display(description="Course summary")
    def course_summary(self, race: Race) -> str:
        course = getattr(race, "course", None)
        if course is None:
            return "No course yet."
        return format_html(
            "{}: {} km, {} m climb, {} points<br>{}",
            course.gpx_filename,
            f"{course.length_m / 1000:.2f}",
            f"{course.climb_m:.0f}",
            f"{course.point_count:,}",
            elevation_sparkline(course.points),
        )

    @admin.display(description="Athletes")
    def start_list_summary(self, race: Race) -> str:
        return f"{race.athletes.count()} athletes on the start list (listed below)."

    def save_model(self, request, race: Race, form: RaceAdminForm, change: bool) -> None:
        # The admin wraps the whole save in one transaction: course, start list and
        # inlines land together or not at all.
        super().save_model(request, race, form, change)
        try:
            if form.gpx_data is not None:
                attach_course(race, form.gpx_name, form.gpx_data, form.parsed_course)
            if form.start_list_rows is not None:
                count = replace_start_list(race, form.start_list_rows)
                audit.organizer_action(request.user, race.slug, "start_list", f"{count} imported")
                messages.success(request, f"Imported {count} athletes from the start list.")
                form.start_list_imported = True
        except ValidationError as refused:  # the race started while the form was open
            messages.error(request, "Not imported, nothing changed. " + " ".join(refused))

    def save_formsets(self, request, form, formset, change):
        # A freshly imported start list replaces the athletes; the inline's stale rows
        # must not be saved over it.
        if getattr(form, "start_list_imported", False) and formset.model is Athlete:
            return
        super().save_formsets(request, form, formset, change)
        if formset.model is Athlete and change and formset.has_changed():
            edits = f"{len(formset.new_objects)} added, {len(formset.changed_objects)} changed, "
            edits += f"{len(formset.deleted_objects)} removed"
            audit.organizer_action(request.user, form.instance.slug, "start_list", edits)

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["preview_button"] = PREVIEW_BUTTON
        context["show_preview"] = obj is None or obj.setup_editable
        if obj is not None:
            context["transitions"] = available_transitions(obj)
            context["live_url"] = obj.get_absolute_url()
            context["control_url"] = control_url(obj)  # "" for a bad stored slug
        form = context["adminform"].form
        if getattr(form, "previewing", False):
            self._show_preview_as_a_step(request, form, context)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def _show_preview_as_a_step(self, request, form: RaceAdminForm, context: dict) -> None:
        """A preview is the form refusing to save; show it as a step, not as an error."""
        kept = [e for e in form.non_field_errors().as_data() if e.code != PREVIEW_CODE]
        if kept:
            form.errors[NON_FIELD_ERRORS] = form.error_class(kept)
        else:
            form.errors.pop(NON_FIELD_ERRORS, None)
        formsets = [inline.formset for inline in context["inline_admin_formsets"]]
        context["errors"] = helpers.AdminErrorList(form, formsets)
        if not context["errors"]:
            messages.info(
                request,
                "Preview: check the course and start list below, then press Save. "
                "Nothing is saved yet.",
            )

    def _transition(self, request, queryset, change, verb: str) -> None:
        for race in queryset:
            try:
                change(race)
            except lifecycle.TransitionRefused as refused:
                self.message_user(request, str(refused), messages.ERROR)
            else:
                audit.organizer_action(request.user, race.slug, ACTION_OF[change])
                self.message_user(request, f"{race.name}: {verb}.", messages.SUCCESS)

    @admin.action(description="Start selected races")
    def start_races(self, request, queryset):
        self._transition(request, queryset, lifecycle.start_race, "started")

    @admin.action(description="Stop selected races")
    def stop_races(self, request, queryset):
        self._transition(request, queryset, lifecycle.stop_race, "stopped")

    @admin.action(description="Export start list (CSV)")
    def export_start_list(self, request, queryset):
        if len(queryset) != 1:
            self.message_user(request, "Select one race to export its start list.", messages.ERROR)
            return None
        race = queryset[0]
        response = HttpResponse(
            export_start_list(list(race.athletes.order_by("bib"))),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{race.slug}-start-list.csv"'
        return response
