"""Start, Stop and Reset from the admin: a button on the race's page, each confirmed first.

The race list's actions call the same lifecycle functions; Reset, the one that deletes
data, asks for confirmation there too. Deleting a race (its page or the list's action) is
refused while it runs (`lifecycle.deletion_refusal`): the organizer stops it first.
"""

from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from races.models import Race
from races.operations import audit
from races.organizer import lifecycle


@dataclass(frozen=True)
class Transition:
    name: str  # URL part and button label
    label: str
    target: str
    change: object  # the lifecycle function
    done: str  # "started", for "Vienna Trail: started."
    consequence: str


TRANSITIONS = {
    t.name: t
    for t in [
        Transition(
            "start", "Start", Race.Status.RUNNING, lifecycle.start_race, "started",
            "The race clock starts now and athletes begin to move on the spectator page. "
            "The course, the start list and the simulation settings become read-only.",
        ),
        Transition(
            "stop", "Stop", Race.Status.STOPPED, lifecycle.stop_race, "stopped",
            "No more positions are recorded; the leaderboard stays as it is now. "
            "Spectators see the race as stopped.",
        ),
        Transition(
            "reset", "Reset to draft", Race.Status.DRAFT, lifecycle.reset_race,
            "reset to draft",
            "Deletes every recorded position and the live leaderboard of this race and "
            "returns it to draft, so its course and start list can be changed again. "
            "This cannot be undone.",
        ),
    ]
}  # fmt: skip


def available_transitions(race: Race) -> list[Transition]:
    """The buttons a race's page offers: the transitions its status allows."""
    allowed = lifecycle.ALLOWED[Race.Status(race.status)]
    return [t for t in TRANSITIONS.values() if t.target in allowed]


class LifecycleAdminMixin:
    """For RaceAdmin: the confirmation pages and the confirmed Reset list action."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.transition_view)
        return [
            path("<path:object_id>/lifecycle/<str:name>/", view, name="races_race_lifecycle"),
            *super().get_urls(),
        ]

    def transition_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        race = get_object_or_404(self.get_queryset(request), pk=unquote(object_id))
        transition = TRANSITIONS.get(name)
        if transition is None:
            return HttpResponseRedirect(self._change_url(race))
        if not self.has_change_permission(request, race):
            raise PermissionDenied
        if request.method == "POST":
            try:
                race = transition.change(race)
            except lifecycle.TransitionRefused as refused:
                self.message_user(request, str(refused), messages.ERROR)
            else:
                audit.organizer_action(request.user, race.slug, transition.name)
                self.message_user(request, f"{race.name}: {transition.done}.", messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(race))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{transition.label}: {race.name}?",
            "race": race,
            "transition": transition,
            "positions": race.positions.count(),
            "athletes": race.athletes.count(),
            "status_badge": self.status_badge(race),
            "live_url": race.get_absolute_url(),
            "change_url": self._change_url(race),
            "refusal": self._refusal(race, transition),
        }
        return TemplateResponse(request, "admin/races/race/confirm_transition.html", context)

    @staticmethod
    def _refusal(race: Race, transition: Transition) -> str:
        try:
            lifecycle.check_transition(race, transition.target)
        except lifecycle.TransitionRefused as refused:
            return str(refused)
        return ""

    def has_delete_permission(self, request, race=None):
        deletable = race is None or not lifecycle.deletion_refusal(race)
        return deletable and super().has_delete_permission(request, race)

    def delete_view(self, request, object_id, extra_context=None):
        """A running race's delete URL says why not, on the race's page (not a bare 403)."""
        race = self.get_object(request, unquote(object_id))
        refusal = race is not None and lifecycle.deletion_refusal(race)
        if refusal and self.has_view_permission(request, race):
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(self._change_url(race))
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (delete_selected_unless_running, name, description)
        return actions

    def _change_url(self, race: Race) -> str:
        return reverse("admin:races_race_change", args=[race.pk])

    @admin.action(description="Reset selected races to draft (deletes their positions)")
    def reset_races(self, request, queryset):
        if request.POST.get("post") == "yes":
            self._transition(request, queryset, lifecycle.reset_race, "reset to draft")
            return None
        resettable = []
        for race in queryset:  # say at once what cannot be reset; ask only about the rest
            refusal = self._refusal(race, TRANSITIONS["reset"])
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
            else:
                resettable.append(race)
        if not resettable:
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Reset these races to draft?",
            "races": [(race, race.positions.count()) for race in resettable],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "consequence": TRANSITIONS["reset"].consequence,
        }
        return TemplateResponse(request, "admin/races/race/confirm_reset_selected.html", context)


def delete_selected_unless_running(modeladmin, request, queryset):
    """Django's "Delete selected" for the races that may be deleted; says at once which may
    not (running), and asks only about the rest."""
    refused = {race.pk: lifecycle.deletion_refusal(race) for race in queryset}
    for refusal in filter(None, refused.values()):
        modeladmin.message_user(request, refusal, messages.ERROR)
    deletable = queryset.exclude(pk__in=[pk for pk, refusal in refused.items() if refusal])
    if not deletable.exists():
        return None
    return delete_selected(modeladmin, request, deletable)
