"""The results page (overall, a gender, a category) and the post-race analysis page."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from races import wire
from races.history import analysis, charts
from races.history.exports import clock_text
from races.history.results import race_results
from races.models import Race
from races.spectators import access


def watched_race(request: HttpRequest, slug: str) -> Race:
    """The race if this request may watch it; 404 as for a missing race otherwise (a
    private race never shows that it exists: `races.spectators.access`)."""
    admitted = access.request_access(request, slug)
    if not admitted.allowed or admitted.race is None:
        raise Http404("no such race")
    return admitted.race


def results_page(request: HttpRequest, slug: str) -> HttpResponse:
    race = watched_race(request, slug)
    results = race_results(race)
    gender = request.GET.get("gender", "")
    category = request.GET.get("category", "")
    rows = results["results"]
    if gender:
        rows = [r for r in rows if r["gender"] == gender]
    if category:
        rows = [r for r in rows if r["category"] == category]
    for row in rows:
        row["finish_text"] = clock_text(row["finish_s"])
        row["gap_text"] = "" if not row["gap_s"] else "+" + clock_text(row["gap_s"])
        by_name = {split["name"]: split for split in row["splits"]}
        row["cells"] = [
            (clock_text(by_name[name]["split_s"]), _pace(by_name[name]["leg_pace_s_per_km"]))
            if name in by_name
            else ("", "")
            for name in results["checkpoints"]
        ]
    return render(
        request,
        "races/results.html",
        {
            "race": race,
            "results": results,
            "rows": rows,
            "gender": gender,
            "category": category,
            "genders": sorted(results["by_gender"]),
            "categories": list(results["by_category"]),
        },
    )


def _pace(seconds: float | None) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}/km" if seconds else ""


def analysis_page(request: HttpRequest, slug: str) -> HttpResponse:
    """One athlete against another (or the winner): legs, gains, moving time, charts."""
    race = watched_race(request, slug)
    athletes = list(race.athletes.order_by("bib").values_list("bib", "name"))
    athletes.sort(key=lambda a: wire.bib_order(a[0]))
    bib = request.GET.get("bib") or (athletes[0][0] if athletes else "")
    versus = request.GET.get("vs") or None
    document = analysis.compare(race, bib, versus) if athletes else None
    if document is None:
        raise Http404(f"no athlete with bib {bib!r} or {versus!r} in this race")
    me, other = document["athlete"], document["versus"]
    return render(
        request,
        "races/analysis.html",
        {
            "race": race,
            "athletes": athletes,
            "bib": bib,
            "vs": versus or "",
            "doc": document,
            "me": me,
            "other": other,
            "legs": [
                {
                    **leg,
                    "leg_text": clock_text(leg["leg_s"]),
                    "other_text": clock_text(leg["other_leg_s"]),
                    "pace_text": _pace(leg["leg_pace_s_per_km"]),
                }
                for leg in document["legs"]
            ],
            "gained": charts.gained_bars(document["legs"]),
            "paces": charts.pace_bars(me["splits"], other["splits"]),
            "lines": charts.distance_lines(me["series"], other["series"]),
            "texts": {
                card: {
                    "moving": clock_text(data["moving_s"]),
                    "stopped": clock_text(data["stopped_s"]),
                    "finish": clock_text(data["finish_s"]),
                }
                for card, data in (("me", me), ("other", other))
            },
        },
    )
