"""The history API: the leaderboard at any instant, results, CSV and GPX exports.

`/api/races/<slug>/leaderboard` without `at` is the live one (`races.spectators.api`);
with `?at=` (an ISO 8601 time with a timezone, or race-clock seconds) it is the
leaderboard as it stood then, replayed by `races.history.timeline`.
"""

from __future__ import annotations

import math
from datetime import datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from races.history import analysis, exports, timeline
from races.history.results import race_results
from races.models import Athlete, Race
from races.spectators import api as live_api


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def parse_at(race: Race, text: str) -> datetime | str:
    """The instant `?at=` names, or the reason it names none."""
    if race.started_at is None:
        return "the race has not started: it has no history yet"
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or not 0 <= seconds <= 30 * 24 * 3600:
            return "at in race seconds must be between 0 and 2592000"
        return timeline.instant(race, seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return "at must be race seconds (e.g. 3600) or an ISO 8601 time (e.g. 2026-05-01T09:30:00Z)"
    if moment.tzinfo is None:
        return "at needs a timezone, e.g. a trailing Z"
    return moment


@require_GET
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    """The live leaderboard, or with `?at=` the one of that instant."""
    if "at" not in request.GET:
        return live_api.leaderboard(request, slug)
    race = live_api.find_race(request, slug)
    if race is None:
        return error(404, f"no race {slug!r}")
    at = parse_at(race, request.GET["at"])
    if isinstance(at, str):
        return error(400, at)
    return JsonResponse(timeline.leaderboard_at(race, at))


@require_GET
def results(request: HttpRequest, slug: str) -> HttpResponse:
    race = live_api.find_race(request, slug)
    if race is None:
        return error(404, f"no race {slug!r}")
    return JsonResponse(race_results(race))


@require_GET
def results_csv(request: HttpRequest, slug: str) -> HttpResponse:
    race = live_api.find_race(request, slug)
    if race is None:
        return error(404, f"no race {slug!r}")
    response = HttpResponse(exports.results_csv(race_results(race)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{race.slug}-results.csv"'
    return response


@require_GET
def athlete_gpx(request: HttpRequest, slug: str, bib: str) -> HttpResponse:
    athlete = Athlete.objects.select_related("race").filter(race__slug=slug, bib=bib).first()
    if athlete is None:
        return error(404, f"no athlete with bib {bib!r} in race {slug!r}")
    response = HttpResponse(exports.athlete_gpx(athlete), content_type="application/gpx+xml")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in bib)
    response["Content-Disposition"] = f'attachment; filename="{slug}-{safe}.gpx"'
    return response


@require_GET
def athlete_analysis(request: HttpRequest, slug: str) -> HttpResponse:
    race = live_api.find_race(request, slug)
    if race is None:
        return error(404, f"no race {slug!r}")
    if not request.GET.get("bib"):
        return error(400, "bib is required: the athlete to analyse (vs: whom to compare with)")
    document = analysis.compare(race, request.GET["bib"], request.GET.get("vs") or None)
    if document is None:
        return error(404, "no athlete with that bib (or vs bib) in this race")
    return JsonResponse(document)
