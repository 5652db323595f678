"""A race that speaks the spectator protocol without a relay, for the page's own tests.

Athletes run at constant speeds from staggered start offsets, so the test knows exactly
who leads when and can make one athlete overtake another. Frames have the shapes of
ARCHITECTURE.md ("Spectator protocol"); positions lie on the real course.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field


@dataclass
class FakeAthlete:
    id: int
    bib: str
    name: str
    gender: str
    category: str
    speed_mps: float
    offset_m: float = 0.0
    status: str = "running"
    splits: list[dict] = field(default_factory=list)


class FakeRace:
    def __init__(self, race, athletes: list[FakeAthlete], clock_s: float = 600.0) -> None:
        course = race.course
        self.slug = race.slug
        self.name = race.name
        self.points = course.points
        self.distances = [p[3] for p in self.points]
        self.length_m = course.length_m
        self.climb_m = course.climb_m
        self.bounds = course.bounds
        self.checkpoints = [
            {"name": cp.name, "distance_m": cp.distance_m, "kind": cp.kind}
            for cp in race.checkpoints.order_by("order")
        ]
        self.athletes = athletes
        self.clock_s = clock_s
        self.frame = 100
        self.overrides: dict[int, float] = {}

    # ---- geometry ---------------------------------------------------------------------

    def where(self, distance: float) -> tuple[float, float, float | None]:
        i = max(0, min(bisect.bisect_right(self.distances, distance) - 1, len(self.points) - 2))
        a, b = self.points[i], self.points[i + 1]
        span = (b[3] - a[3]) or 1.0
        t = min(max((distance - a[3]) / span, 0.0), 1.0)
        ele = None if a[2] is None or b[2] is None else a[2] + (b[2] - a[2]) * t
        return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, ele

    def distance_of(self, athlete: FakeAthlete) -> float:
        if athlete.id in self.overrides:
            return min(self.overrides[athlete.id], self.length_m)
        return min(athlete.offset_m + athlete.speed_mps * self.clock_s, self.length_m)

    def geojson(self) -> str:
        coordinates = [
            [p[1], p[0], p[2]] if p[2] is not None else [p[1], p[0]] for p in self.points
        ]
        return json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": self.name},
                        "geometry": {"type": "LineString", "coordinates": coordinates},
                    }
                ],
            }
        )

    # ---- frames -------------------------------------------------------------------------

    def public(self) -> list[dict]:
        rows = []
        for athlete in self.athletes:
            distance = self.distance_of(athlete)
            if distance >= self.length_m and athlete.status == "running":
                athlete.status = "finished"
            lat, lon, ele = self.where(distance)
            passed = [cp for cp in self.checkpoints if cp["kind"] != "start"]
            splits = [
                {
                    "name": cp["name"],
                    "distance_m": cp["distance_m"],
                    "split_s": round(
                        max(cp["distance_m"] - athlete.offset_m, 0) / athlete.speed_mps, 1
                    ),
                }
                for cp in passed
                if cp["distance_m"] <= distance
            ]
            rows.append(
                {
                    "id": athlete.id,
                    "bib": athlete.bib,
                    "name": athlete.name,
                    "gender": athlete.gender,
                    "category": athlete.category,
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "ele": ele,
                    "distance_m": round(distance, 1),
                    "speed_mps": athlete.speed_mps,
                    "status": athlete.status,
                    "pace_s_per_km": round(1000 / athlete.speed_mps, 1),
                    "eta_s": round((self.length_m - distance) / athlete.speed_mps),
                    "elapsed_s": self.clock_s,
                    "last_checkpoint": splits[-1] if splits else None,
                    "splits": splits,
                    "time": None,
                }
            )
        self.rank(rows)
        return rows

    def rank(self, rows: list[dict]) -> None:
        ranked = sorted(
            (r for r in rows if r["status"] in ("running", "finished")),
            key=lambda r: -r["distance_m"],
        )
        by_gender: dict[str, int] = {}
        by_category: dict[str, int] = {}
        leader = ranked[0] if ranked else None
        for n, row in enumerate(ranked, start=1):
            by_gender[row["gender"]] = by_gender.get(row["gender"], 0) + 1
            by_category[row["category"]] = by_category.get(row["category"], 0) + 1
            row["rank"], row["rank_gender"] = n, by_gender[row["gender"]]
            row["rank_category"] = by_category[row["category"]]
            row["gap_s"] = round((leader["distance_m"] - row["distance_m"]) / row["speed_mps"], 1)
        for row in rows:
            row.setdefault("rank", None)
            row.setdefault("rank_gender", None)
            row.setdefault("rank_category", None)
            row.setdefault("gap_s", None)

    def snapshot(self) -> str:
        return json.dumps(
            {
                "type": "snapshot",
                "frame": self.frame,
                "race": {
                    "slug": self.slug,
                    "name": self.name,
                    "status": "running",
                    "started_at": "2026-05-01T09:00:00Z",
                    "time_compression": 10.0,
                    "clock_s": self.clock_s,
                },
                "course": {
                    "length_m": self.length_m,
                    "climb_m": self.climb_m,
                    "bounds": self.bounds,
                    "checkpoints": self.checkpoints,
                    "geojson_url": f"/api/races/{self.slug}/course.geojson",
                },
                "athletes": self.public(),
            }
        )

    def update(self, seconds: float = 5.0, frame: int | None = None) -> str:
        """The next frame after `seconds` of race time (or a chosen frame number)."""
        self.clock_s += seconds
        self.frame = self.frame + 1 if frame is None else frame
        return json.dumps(
            {
                "type": "update",
                "frame": self.frame,
                "clock_s": self.clock_s,
                "athletes": self.public(),
            }
        )


def field_of(count: int, seed: int = 3) -> list[FakeAthlete]:
    """count athletes with spread-out speeds and offsets (a repeatable field)."""
    import random

    rng = random.Random(seed)
    athletes = []
    for n in range(1, count + 1):
        female = n % 3 == 0
        athletes.append(
            FakeAthlete(
                id=n,
                bib=str(n),
                name=f"{'Anna' if female else 'Paul'} Runner {n}",
                gender="female" if female else "male",
                category=("W" if female else "M") + str(20 + 10 * (n % 4)),
                speed_mps=rng.uniform(2.2, 3.8),
                offset_m=rng.uniform(0, 400),
            )
        )
    return athletes
