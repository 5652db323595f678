"""The results page: overall, or one gender or category, with splits and exports."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from races.history.exports import clock_text
from races.history.results import race_results
from races.models import Race


def results_page(request: HttpRequest, slug: str) -> HttpResponse:
    race = get_object_or_404(Race.objects.select_related("course"), slug=slug)
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
