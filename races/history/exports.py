"""Exports: the results as CSV (safe to open in a spreadsheet), an athlete's track as GPX."""

from __future__ import annotations

import csv
import io

import gpxpy.gpx

from races.models import Athlete, Position

# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets
# (OWASP "CSV injection"); a leading apostrophe makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A CSV cell that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def clock_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def results_csv(results: dict) -> str:
    """One line per athlete: ranks, time, gap, status, then each split's time and leg pace."""
    names = results["checkpoints"]
    out = io.StringIO()
    writer = csv.writer(out)
    head = ["rank", "bib", "name", "gender", "category", "rank_gender", "rank_category",
            "status", "finish_time", "gap", "distance_km", "last_checkpoint"]  # fmt: skip
    for name in names:
        head += [f"{name} split", f"{name} leg pace (min/km)"]
    writer.writerow([cell(h) for h in head])
    for row in results["results"]:
        by_name = {split["name"]: split for split in row["splits"]}
        line = [
            row["rank"], row["bib"], row["name"], row["gender"], row["category"],
            row["rank_gender"], row["rank_category"], row["status"].upper(),
            clock_text(row["finish_s"]), clock_text(row["gap_s"]),
            f"{row['distance_m'] / 1000:.2f}",
            (row["last_checkpoint"] or {}).get("name", ""),
        ]  # fmt: skip
        for name in names:
            split = by_name.get(name)
            pace = split and split["leg_pace_s_per_km"]
            line += [
                clock_text(split["split_s"]) if split else "",
                f"{int(pace // 60)}:{int(pace % 60):02d}" if pace else "",
            ]
        writer.writerow([cell(value) for value in line])
    return out.getvalue()


def athlete_gpx(athlete: Athlete) -> str:
    """Every stored position of the athlete, in order, as one GPX track (gpxpy writes it)."""
    document = gpxpy.gpx.GPX()
    document.creator = "RaceWeb"
    track = gpxpy.gpx.GPXTrack(name=f"{athlete.bib} {athlete.name} · {athlete.race.name}")
    segment = gpxpy.gpx.GPXTrackSegment()
    rows = Position.objects.filter(athlete=athlete).order_by("seq")
    for lat, lon, ele, time in rows.values_list("latitude", "longitude", "elevation", "time"):
        segment.points.append(gpxpy.gpx.GPXTrackPoint(lat, lon, elevation=ele, time=time))
    track.segments.append(segment)
    document.tracks.append(track)
    return document.to_xml(version="1.1")
