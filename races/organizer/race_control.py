"""Race control (`/control/<slug>/`): the organizer's live room for one race.

Staff only. The page lists the athletes to look at now (alerts computed by the relay,
`races.organizer.race_alerts`, read from `RaceAlerts` every couple of seconds) and the
athletes live over the same socket and frames as the spectator page (`static/js/
race-control.js` reuses `connection.js` and `state.js`). Its form records decisions
(`races.organizer.decisions`): DNS, DNF with a reason, a corrected finish time, undo. On a
tracked race it shows each athlete's tracker too (source, battery, newest fix), which the
relay keeps in `RaceAlerts.devices`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from races.models import AthleteDecision, Race, RaceAlerts
from races.operations import audit
from races.organizer import decisions
from races.organizer.race_alerts import KINDS
from races.spectators import access
from races.spectators.views import page_config

ALERT_LABELS = {
    "no_position": "No position",
    "not_moving": "Not moving",
    "off_course": "Off course",
    "going_backwards": "Going backwards",
    "missed_checkpoint": "Missed checkpoint",
}
assert set(ALERT_LABELS) == set(KINDS)


def organized_race(request: HttpRequest, slug: str, races=None) -> Race:
    """The race if this account organizes it (its organization's, or any for a superuser:
    `races.spectators.access.organized_races`); 404 as for a missing race otherwise."""
    return get_object_or_404(access.organized_races(request.user, races), slug=slug)


def control_url(race: Race) -> str:
    """Race control's page, or "" for a stored slug no URL can carry (see get_absolute_url)."""
    try:
        return reverse("race-control", args=[race.slug])
    except NoReverseMatch:
        return ""


def current_alerts(race: Race) -> list[dict]:
    """The alerts in force (only while the race runs: the relay stops checking after)."""
    if race.status != Race.Status.RUNNING:
        return []
    row = RaceAlerts.objects.filter(race=race).first()
    alerts = list(row.alerts) if row else []
    for alert in alerts:
        alert["label"] = ALERT_LABELS.get(alert["kind"], alert["kind"])
    return alerts


def current_devices(race: Race) -> dict[str, dict]:
    """A tracked race's trackers as the relay last heard of them (athlete id -> source,
    fix_time, battery_pct, accuracy_m); organizers only, never on the public pages."""
    if race.simulated:
        return {}
    row = RaceAlerts.objects.filter(race=race).first()
    return dict(row.devices) if row else {}


@staff_member_required
@require_GET
def race_control(request: HttpRequest, slug: str) -> HttpResponse:
    race = organized_race(request, slug, Race.objects.select_related("course"))
    active = decisions.active_decisions(race)
    alerts = current_alerts(race)
    config = {
        "alerts": alerts,
        **page_config(race),
        "alerts_url": reverse("race-control-alerts", args=[race.slug]),
        "alert_labels": ALERT_LABELS,
        "tracked": not race.simulated,
        "devices": current_devices(race),
        "started_at": race.started_at.isoformat() if race.started_at else None,
        "time_compression": race.clock_compression,
    }
    context = {
        "race": race,
        "page": config,
        "athletes": race.athletes.order_by("bib"),
        "alerts": alerts,
        "active": sorted(active.values(), key=lambda d: d.athlete.bib),
        "log": race.decisions.select_related("athlete")[:50],
        "kinds": [k for k in AthleteDecision.Kind if k != AthleteDecision.Kind.UNDO],
        "decidable": race.status in decisions.DECIDABLE_STATUSES,
        "admin_url": reverse("admin:races_race_change", args=[race.pk]),
    }
    return render(request, "races/race_control.html", context)


@staff_member_required
@require_GET
def race_control_alerts(request: HttpRequest, slug: str) -> JsonResponse:
    race = organized_race(request, slug)
    return JsonResponse(
        {"status": race.status, "alerts": current_alerts(race), "devices": current_devices(race)}
    )


@staff_member_required
@require_POST
def race_control_decide(request: HttpRequest, slug: str) -> HttpResponse:
    race = organized_race(request, slug)
    back = redirect("race-control", slug=race.slug)
    bib = request.POST.get("bib", "").strip()
    athlete = race.athletes.filter(bib=bib).first()
    if athlete is None:
        messages.error(request, f"No athlete with bib {bib!r} in {race}.")
        return back
    kind = request.POST.get("kind", "")
    reason = request.POST.get("reason", "")
    by = request.user.get_username()
    try:
        if kind == "undo":
            decisions.undo(race, athlete, by=by, reason=reason)
            audit.organizer_action(request.user, race.slug, "undo", f"bib {athlete.bib}")
            messages.success(request, f"Decision for {athlete} undone.")
            return back
        finish_s = None
        if kind == AthleteDecision.Kind.FINISH_TIME:
            finish_s = decisions.parse_race_time(request.POST.get("finish_time", ""))
        decision = decisions.decide(race, athlete, kind, by=by, reason=reason, finish_s=finish_s)
    except decisions.DecisionRefused as refused:
        messages.error(request, str(refused))
        return back
    audit.organizer_action(request.user, race.slug, kind, f"bib {athlete.bib}: {reason}".strip())
    messages.success(request, f"{athlete}: {decision.get_kind_display()}. Spectators see it now.")
    return back
