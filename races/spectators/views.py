"""Spectator pages: the race list and the live race page.

Both pages render what the database knows, so they are useful before any script runs;
the live parts (positions, leaderboard, status changes) arrive over WebSockets.
"""

import json

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from races.models import LiveAthlete, Race
from races.spectators import access

# Running races first, then those about to start, then the ones already over.
LIST_ORDER = [
    Race.Status.RUNNING,
    Race.Status.SCHEDULED,
    Race.Status.FINISHED,
    Race.Status.STOPPED,
    Race.Status.DRAFT,
]


def spectator_races():
    """Races a spectator may see, running ones first (drafts are the organizers' business)."""
    order = Case(
        *(When(status=status, then=Value(n)) for n, status in enumerate(LIST_ORDER)),
        output_field=IntegerField(),
    )
    return (
        access.listed_races()
        .exclude(status=Race.Status.DRAFT)
        .select_related("course")
        .annotate(athlete_total=Count("athletes"), list_order=order)
        .order_by("list_order", "-started_at", "scheduled_start", "name")
    )


def athlete_counts(races: list[Race]) -> dict[int, dict[str, int]]:
    """Per race: athletes running, finished and out, from the relay's live state."""
    counts: dict[int, dict[str, int]] = {race.pk: {} for race in races}
    rows = (
        LiveAthlete.objects.filter(race__in=races)
        .values("race_id", "state__status")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["race_id"]][row["state__status"]] = row["n"]
    return counts


def race_list(request: HttpRequest) -> HttpResponse:
    races = list(spectator_races())
    counts = athlete_counts(races)
    for race in races:
        race.counts = counts[race.pk]
        total = race.athlete_total or 1
        race.finished_share = 100 * race.counts.get("finished", 0) / total
        race.running_share = 100 * race.counts.get("running", 0) / total
    return render(request, "races/race_list.html", {"races": races})


def race_detail(request: HttpRequest, slug: str) -> HttpResponse:
    admitted = access.request_access(request, slug)
    if admitted.outcome is access.Outcome.HIDDEN:
        return race_gate(request, slug, 404, "")
    if not admitted.allowed:
        status = 401 if admitted.outcome is access.Outcome.EXPIRED else 403
        return race_gate(request, slug, status, admitted.reason)
    race = admitted.race
    return render(request, "races/race_detail.html", {"race": race, "page": page_config(race)})


def race_gate(request: HttpRequest, slug: str, status: int, reason: str) -> HttpResponse:
    """The page of a race one may not watch: identical for a private race and a missing one
    (status 404, reason ""). It carries the script that trades a share link's `#access=`
    fragment for the cookie, so a fresh link works even where an old one was refused."""
    context = {"slug": slug, "reason": reason, "access_url": f"/races/{slug}/access"}
    return render(request, "races/race_gate.html", context, status=status)


@csrf_exempt  # it only stores a link its holder already has; no session, nothing to forge
@require_POST
def race_access(request: HttpRequest, slug: str) -> JsonResponse:
    """`{"token": ...}` from the page's fragment: valid → the cookie the page and its
    socket carry from now on. Answers 404 like a missing race for anything else but a
    genuine expired (401) or revoked (403) link for this race."""
    try:
        token = json.loads(request.body or b"{}").get("token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or len(token) > 4096:
        token = ""
    admitted = access.spectator_access(slug, token)
    if admitted.outcome is access.Outcome.HIDDEN:
        return JsonResponse({"error": f"no race {slug!r}"}, status=404)
    if not admitted.allowed:
        status = 401 if admitted.outcome is access.Outcome.EXPIRED else 403
        body = {"error": admitted.reason, "outcome": admitted.outcome.value}
        return JsonResponse(body, status=status)
    if not admitted.token:  # a public or unlisted race: nothing to remember
        return JsonResponse({"ok": True, "expires_at": None})
    response = JsonResponse({"ok": True, "expires_at": admitted.expires_at.isoformat()})
    response.set_cookie(
        access.cookie_name(slug),
        token,
        expires=admitted.expires_at,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


def page_config(race: Race) -> dict:
    """What the race page's script needs before the first snapshot arrives."""
    course = getattr(race, "course", None)
    return {
        "slug": race.slug,
        "name": race.name,
        "status": race.status,
        "socket_path": f"/ws/races/{race.slug}/",
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
        "bounds": course.bounds if course else None,
        "length_m": course.length_m if course else None,
        "athletes": race.athletes.count(),
    }
