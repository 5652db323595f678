"""The JSON API under /api/: races, course GeoJSON, leaderboard, positions, tracks.

Read-only and anonymous, like the spectator pages. Lists hold public races only; a private
race answers exactly like a missing one unless the request shows a valid share link
(cookie or `Authorization: Bearer <token>`) or a staff login (races.spectators.access).
The leaderboard is the relay's stored live state (`races.spectators.snapshots`), the same
one a spectator's snapshot comes from.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime

import gpxpy.geo
from django.core.cache import cache
from django.db.models import OuterRef, Subquery
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from races import wire
from races.models import Athlete, Position, Race
from races.spectators import access, snapshots

# A map needs no more; longer courses are simplified (Ramer-Douglas-Peucker, gpxpy),
# with the smallest of these tolerances (metres) that gets under the limit.
MAX_COURSE_POINTS = 5000
SIMPLIFY_TOLERANCES_M = (2.0, 5.0, 10.0, 25.0, 50.0, 100.0)
MAX_POSITIONS = 10_000
COURSE_CACHE_S = 24 * 3600


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def find_race(request, slug: str) -> Race | None:
    """The race, if this request may watch it; None (as for a missing race) otherwise."""
    admitted = access.request_access(request, slug)
    return admitted.race if admitted.allowed else None


def may_watch(request, slug: str) -> bool:
    return access.request_access(request, slug).allowed


@require_GET
def race_list(request):
    races = access.listed_races(Race.objects.order_by("status", "name"))
    return JsonResponse({"races": [_race_json(race) for race in races]})


@require_GET
def race_detail(request, slug: str):
    race = find_race(request, slug)
    if race is None:
        return error(404, f"no race {slug!r}")
    checkpoints = list(race.checkpoints.values("name", "distance_m", "kind"))
    return JsonResponse(
        {
            **_race_json(race),
            "course": snapshots.course_summary(race, checkpoints),
            "athletes": race.athletes.count(),
        }
    )


@require_GET
def course_geojson(request, slug: str):
    race = find_race(request, slug)
    course = getattr(race, "course", None) if race else None
    if course is None:
        return error(404, f"no course for race {slug!r}")
    key = f"course-geojson:{course.pk}:{len(course.points)}:{course.length_m}"
    document = cache.get(key)
    if document is None:
        document = course_document(race)
        cache.set(key, document, COURSE_CACHE_S)
    response = JsonResponse(document)
    response["Content-Type"] = "application/geo+json"
    return response


@require_GET
def leaderboard(request, slug: str):
    if not may_watch(request, slug):
        return error(404, f"no race {slug!r}")
    try:
        snapshot = snapshots.read_snapshot(slug)
    except snapshots.UnknownRace:
        return error(404, f"no race {slug!r}")
    return JsonResponse(
        {"frame": snapshot["frame"], "race": snapshot["race"], "athletes": snapshot["athletes"]}
    )


@require_GET
def positions(request, slug: str):
    """`?since_frame=N`: stored positions of frames after N (oldest first, at most
    MAX_POSITIONS; `more` says whether to ask again). `?at=ISO-time`: every athlete's last
    position at or before that time."""
    race = find_race(request, slug)
    if race is None:
        return error(404, f"no race {slug!r}")
    if "at" in request.GET:
        try:
            at = datetime.fromisoformat(request.GET["at"].replace("Z", "+00:00"))
        except ValueError:
            return error(400, "at must be an ISO 8601 time, e.g. 2026-05-01T09:30:00Z")
        if at.tzinfo is None:
            return error(400, "at needs a timezone, e.g. a trailing Z")
        latest = Subquery(
            Position.objects.filter(race=race, athlete=OuterRef("pk"), time__lte=at)
            .order_by("-seq")
            .values("pk")[:1]
        )
        ids = race.athletes.annotate(position=latest).values_list("position", flat=True)
        rows = Position.objects.filter(pk__in=[i for i in ids if i is not None])
        return JsonResponse({"at": request.GET["at"], "positions": _positions_json(rows)})
    try:
        since = int(request.GET.get("since_frame", "0"))
    except ValueError:
        return error(400, "since_frame must be an integer")
    rows = list(
        Position.objects.filter(race=race, frame__gt=since).order_by("frame", "seq")[
            : MAX_POSITIONS + 1
        ]
    )
    more = len(rows) > MAX_POSITIONS
    rows = rows[:MAX_POSITIONS]
    return JsonResponse(
        {
            "since_frame": since,
            "frame": rows[-1].frame if rows else since,
            "more": more,
            "positions": _positions_json(rows),
        }
    )


@require_GET
def athlete_track(request, slug: str, bib: str):
    race = find_race(request, slug)
    athlete = race and Athlete.objects.filter(race=race, bib=bib).first()
    if athlete is None:
        return error(404, f"no athlete with bib {bib!r} in race {slug!r}")
    rows = Position.objects.filter(athlete=athlete).order_by("seq")
    return JsonResponse(
        {
            "athlete": {
                "id": athlete.pk,
                "bib": athlete.bib,
                "name": athlete.name,
                "gender": athlete.gender,
                "category": athlete.category,
            },
            "positions": _positions_json(rows),
        }
    )


def course_document(race: Race) -> dict:
    """The course as a GeoJSON FeatureCollection: the line (with each point's distance
    along the course in `distances_m`) and the checkpoints as points."""
    course = race.course
    points = course.points
    kept = simplified_indices(points)
    line = [_lon_lat_ele(points[i]) for i in kept]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": line},
            "properties": {
                "name": race.name,
                "length_m": course.length_m,
                "distances_m": [round(points[i][3], 1) for i in kept],
                "points": len(points),
                "simplified": len(kept) < len(points),
            },
        }
    ]
    distances = [p[3] for p in points]
    for checkpoint in race.checkpoints.order_by("order"):
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": _point_at(points, distances, checkpoint.distance_m),
                },
                "properties": {
                    "name": checkpoint.name,
                    "distance_m": checkpoint.distance_m,
                    "kind": checkpoint.kind,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def simplified_indices(points: list) -> list[int]:
    """Indices of the course points a map needs: all, or a Douglas-Peucker subset."""
    if len(points) <= MAX_COURSE_POINTS:
        return list(range(len(points)))
    locations = [gpxpy.geo.Location(p[0], p[1]) for p in points]
    index = {id(location): i for i, location in enumerate(locations)}
    for tolerance in SIMPLIFY_TOLERANCES_M:
        try:
            kept = gpxpy.geo.simplify_polyline(locations, tolerance)
        except RecursionError:  # a pathological shape: fall back to even thinning
            break
        if len(kept) <= MAX_COURSE_POINTS:
            return [index[id(location)] for location in kept]
    step = -(-len(points) // MAX_COURSE_POINTS)
    return sorted({*range(0, len(points), step), len(points) - 1})


def _lon_lat_ele(point: list) -> list:
    return [point[1], point[0]] if point[2] is None else [point[1], point[0], point[2]]


def _point_at(points: list, distances: list[float], distance: float) -> list:
    i = min(max(bisect_right(distances, distance) - 1, 0), len(points) - 2)
    if i < 0:  # a one-point course
        return [points[0][1], points[0][0]]
    a, b = points[i], points[i + 1]
    t = 0.0 if b[3] == a[3] else min(max((distance - a[3]) / (b[3] - a[3]), 0.0), 1.0)
    return [a[1] + t * (b[1] - a[1]), a[0] + t * (b[0] - a[0])]


def _race_json(race: Race) -> dict:
    return {
        **wire.race_summary(race),
        "url": race.get_absolute_url(),
        "api": {
            "detail": f"/api/races/{race.slug}/",
            "course": f"/api/races/{race.slug}/course.geojson",
            "leaderboard": f"/api/races/{race.slug}/leaderboard",
            "positions": f"/api/races/{race.slug}/positions",
            "socket": f"/ws/races/{race.slug}/",
        },
    }


def _positions_json(rows) -> list[dict]:
    return [
        {
            "seq": p.seq,
            "athlete_id": p.athlete_id,
            "time": p.time.isoformat().replace("+00:00", "Z"),
            "lat": p.latitude,
            "lon": p.longitude,
            "ele": p.elevation,
            "distance_m": p.distance_m,
            "speed_mps": p.speed_mps,
            "event": p.event,
            "frame": p.frame,
        }
        for p in rows
    ]
