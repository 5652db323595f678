"""A small inline SVG elevation profile, for the admin's course summary."""

from django.utils.html import format_html


def profile_coordinates(points: list[list], width: int, height: int, top: int = 2) -> str:
    """SVG polyline coordinates of a course's elevation over distance ("" without elevations).

    points are [lat, lon, elevation or None, distance_m]; one sample per pixel of width,
    2 px kept free below and `top` px above.
    """
    samples = [(p[3], p[2]) for p in points if p[2] is not None]
    if len(samples) < 2:
        return ""
    step = max(1, len(samples) // width)
    samples = [*samples[::step], samples[-1]]
    length = samples[-1][0] or 1.0
    low = min(e for _, e in samples)
    span = (max(e for _, e in samples) - low) or 1.0
    return " ".join(
        f"{d / length * width:.1f},{height - 2 - (e - low) / span * (height - 2 - top):.1f}"
        for d, e in samples
    )


def elevation_sparkline(points: list[list], width: int = 320, height: int = 60) -> str:
    """A course's elevation profile as safe SVG markup."""
    coords = profile_coordinates(points, width, height)
    if not coords:
        return ""
    return format_html(
        '<svg width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="Elevation profile">'
        '<polyline fill="none" stroke="#c0392b" stroke-width="1.5" points="{}"/></svg>',
        width, height, width, height, coords,
    )  # fmt: skip


def course_summary_html(course) -> str:
    """Length, climb, points and profile of a ParsedCourse, as safe HTML."""
    points = [[p.latitude, p.longitude, p.elevation, p.distance_m] for p in course.points]
    return format_html(
        "<strong>{}</strong>: {} km, {} m climb, {} m descent, {} points in {} segment(s)<br>{}"
        "<br>This file is kept for saving; choose another file to replace it.",
        course.name or "Course",
        f"{course.length_m / 1000:.2f}",
        f"{course.climb_m:.0f}",
        f"{course.descent_m:.0f}",
        f"{len(course.points):,}",
        course.segments,
        elevation_sparkline(points),
    )
