"""The admin's read-only record of race-control decisions (who, what, when, why).

Decisions are made in race control (`/control/<slug>/`), which sends them to the relay;
the admin only shows them, so nothing here can change a result behind the relay's back.
"""

from django.contrib import admin

from races.models import AthleteDecision


@admin.register(AthleteDecision)
class AthleteDecisionAdmin(admin.ModelAdmin):
    list_display = ["decided_at", "race", "athlete", "kind", "reason", "finish_s", "decided_by"]
    list_filter = ["kind", "race"]
    search_fields = ["athlete__name", "athlete__bib", "reason", "decided_by"]
    list_select_related = ["race", "athlete"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
