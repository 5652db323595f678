"""Organizer accounts in the admin: races scoped to the account's organization, share links
for private races, revoked link labels, organizations, and the audit trail with CSV export.

Every race the admin touches comes through `RaceAccessMixin.get_queryset`, which is
`races.spectators.access.organized_races`: a change, delete, history, lifecycle or share
URL of another organization's race finds nothing (404 or the admin's "doesn't exist").
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from races.models import (
    Organization,
    OrganizerAction,
    OrganizerMembership,
    Race,
    RevokedSpectatorLabel,
    SpectatorConnection,
)
from races.operations import audit
from races.spectators import access, tokens

SHARE_HOURS = 48


class ShareLinkForm(forms.Form):
    hours = forms.FloatField(min_value=0.1, max_value=24 * 366, initial=SHARE_HOURS)
    label = forms.CharField(
        max_length=tokens.MAX_LABEL,
        required=False,
        help_text='Who the link is for ("press", "sponsor"): revoking the label later '
        "withdraws every link minted with it.",
    )


class RaceAccessMixin:
    """For RaceAdmin: organization scoping and the share-link page."""

    def get_queryset(self, request):
        return access.organized_races(request.user, super().get_queryset(request))

    def has_view_permission(self, request, race=None):
        allowed = super().has_view_permission(request, race)
        return allowed and (race is None or access.can_organize(request.user, race))

    def has_change_permission(self, request, race=None):
        allowed = super().has_change_permission(request, race)
        return allowed and (race is None or access.can_organize(request.user, race))

    def has_delete_permission(self, request, race=None):
        allowed = super().has_delete_permission(request, race)
        return allowed and (race is None or access.can_organize(request.user, race))

    def access_fields(self, request) -> list[str]:
        """Added to the first fieldset; the form holds only fieldset fields, so a non-superuser
        cannot post an organization."""
        return ["visibility", "organization"] if request.user.is_superuser else ["visibility"]

    def save_model(self, request, race: Race, form, change: bool) -> None:
        if not change and not request.user.is_superuser:
            race.organization_id = access.organization_id(request.user)
        if change and "visibility" in form.changed_data:
            audit.organizer_action(request.user, race.slug, "visibility", race.visibility)
            access.forget_hidden_slugs()
        super().save_model(request, race, form, change)

    def get_urls(self):
        view = self.admin_site.admin_view(self.share_view)
        return [
            path("<path:object_id>/share/", view, name="races_race_share"),
            *super().get_urls(),
        ]

    def share_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        race = get_object_or_404(self.get_queryset(request), pk=unquote(object_id))
        if not self.has_change_permission(request, race):
            raise PermissionDenied
        form = ShareLinkForm(request.POST or None)
        link = ""
        if request.method == "POST" and form.is_valid():
            hours, label = form.cleaned_data["hours"], form.cleaned_data["label"]
            link = share_url(request, race, tokens.mint(race.slug, hours, label))
            audit.organizer_action(request.user, race.slug, "share_link", f"{hours:g} h {label}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Share link: {race.name}",
            "race": race,
            "form": form,
            "link": link,
            "private": race.visibility == Race.Visibility.PRIVATE,
            "change_url": reverse("admin:races_race_change", args=[race.pk]),
        }
        return TemplateResponse(request, "admin/races/race/share_link.html", context)


def share_url(request: HttpRequest, race: Race, token: str) -> str:
    """The link to hand out: the token in the fragment, which no server log records."""
    return request.build_absolute_uri(race.get_absolute_url()) + "#access=" + token


class RevokedLabelInline(admin.TabularInline):
    model = RevokedSpectatorLabel
    extra = 0
    fields = ["label", "revoked_at"]
    readonly_fields = ["revoked_at"]
    verbose_name = "revoked share-link label"
    verbose_name_plural = "Revoked share-link labels (their links stop working, open pages too)"


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]

    class MembershipInline(admin.TabularInline):
        model = OrganizerMembership
        extra = 1
        autocomplete_fields = []

    inlines = [MembershipInline]


class AuditAdmin(admin.ModelAdmin):
    """Read-only; an organizer sees the entries of its own races."""

    actions = ["export_csv"]
    csv_name = ""

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        slugs = access.organized_races(request.user).values("slug")
        return rows.filter(race_slug__in=slugs)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def export_csv(self, request, queryset):
        response = HttpResponse(self.to_csv(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.csv_name}"'
        return response

    export_csv.short_description = "Export selected entries (CSV)"


@admin.register(SpectatorConnection)
class SpectatorConnectionAdmin(AuditAdmin):
    list_display = ["connected_at", "race_slug", "endpoint", "address", "label", "username",
                    "duration", "close_code"]  # fmt: skip
    list_filter = ["endpoint", "close_code"]
    search_fields = ["race_slug", "label", "username", "address"]
    date_hierarchy = "connected_at"
    csv_name = "spectator-connections.csv"
    to_csv = staticmethod(audit.connections_csv)

    @admin.display(description="Duration")
    def duration(self, row: SpectatorConnection) -> str:
        seconds = row.duration_s
        return "open" if seconds is None else f"{seconds:.0f} s"


@admin.register(OrganizerAction)
class OrganizerActionAdmin(AuditAdmin):
    list_display = ["at", "username", "race_slug", "action", "detail"]
    list_filter = ["action"]
    search_fields = ["race_slug", "username", "detail"]
    date_hierarchy = "at"
    csv_name = "organizer-actions.csv"
    to_csv = staticmethod(audit.actions_csv)
