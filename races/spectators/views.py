"""Spectator pages: the race list and the live race page.

Both pages render what the database knows, so they are useful before any script runs;
the live parts (positions, leaderboard, status changes) arrive over WebSockets.
"""

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from races.models import LiveAthlete, Race

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
        Race.objects.exclude(status=Race.Status.DRAFT)
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
    race = get_object_or_404(Race.objects.select_related("course"), slug=slug)
    return render(request, "races/race_detail.html", {"race": race, "page": page_config(race)})


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
