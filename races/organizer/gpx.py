"""GPX course import: validate an uploaded file and turn it into a course.

gpxpy does the GPX parsing; defusedxml refuses DTDs and entity declarations before any
parser could expand them. Limits on size and point count are enforced before parsing.
Every refusal raises GPXError with a message meant for the organizer.
"""

import itertools
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import defusedxml
import defusedxml.ElementTree
import gpxpy
import gpxpy.geo
import gpxpy.gpx
from django.conf import settings

# Pauses longer than this are not counted as moving time of a recording.
MAX_MOVING_GAP_SECONDS = 3600
# Waypoints farther than this from the course are not turned into checkpoints.
MAX_WAYPOINT_OFFSET_M = 250.0
# Checkpoints closer than this to the start or finish are dropped as redundant.
MIN_CHECKPOINT_SPACING_M = 100.0

_POINT_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:trkpt|rtept)\b")
_ENCODING_DECLARATION = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding=["']([\w.-]+)["']""")


class GPXError(ValueError):
    """A GPX file was refused; the message says why, for the person who uploaded it."""


@dataclass
class CoursePoint:
    latitude: float
    longitude: float
    elevation: float | None
    distance_m: float


@dataclass
class Waypoint:
    name: str
    latitude: float
    longitude: float


@dataclass
class ParsedCourse:
    name: str
    points: list[CoursePoint]
    waypoints: list[Waypoint]
    climb_m: float
    descent_m: float
    recorded_seconds: float | None
    segments: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def length_m(self) -> float:
        return self.points[-1].distance_m

    @property
    def bounds(self) -> list[float]:
        lats = [p.latitude for p in self.points]
        lons = [p.longitude for p in self.points]
        return [min(lats), min(lons), max(lats), max(lons)]

    @property
    def elevations(self) -> list[float]:
        return [p.elevation for p in self.points if p.elevation is not None]


def parse_gpx(data: bytes) -> ParsedCourse:
    """Validate and parse GPX bytes into a course, or raise GPXError saying why."""
    _check_limits(data)
    text = _decode(data)
    _refuse_dtd_and_broken_xml(text)
    try:
        document = gpxpy.parse(text)
    except gpxpy.gpx.GPXXMLSyntaxException as error:
        raise GPXError(f"The file is not well-formed XML: {_reason(error)}.") from error
    except gpxpy.gpx.GPXException as error:
        raise GPXError(f"The file is not valid GPX: {_reason(error)}.") from error
    segments = _course_segments(document)
    if not segments:
        raise GPXError("The file has no course points: no track or route with points in it.")
    return _build_course(document, segments)


@dataclass
class RecordedPoint:
    latitude: float
    longitude: float
    elevation: float | None
    time: datetime


def parse_recording(data: bytes) -> list[RecordedPoint]:
    """An athlete's recorded track (a watch's or phone's GPX): its timed points in file
    order, with the course upload's limits and checks. Points without a time are skipped
    (they cannot be placed in the race); none at all is refused."""
    _check_limits(data)
    text = _decode(data)
    _refuse_dtd_and_broken_xml(text)
    try:
        document = gpxpy.parse(text)
    except gpxpy.gpx.GPXException as error:
        raise GPXError(f"The file is not valid GPX: {_reason(error)}.") from error
    points = []
    for number, point in enumerate(itertools.chain.from_iterable(_course_segments(document)), 1):
        _validate_point(point, number)
        if point.time is not None:
            moment = (
                point.time if point.time.tzinfo else point.time.replace(tzinfo=UTC)
            ).astimezone(UTC)
            points.append(RecordedPoint(point.latitude, point.longitude, point.elevation, moment))
    if not points:
        raise GPXError("The file has no timed points: a recording needs <time> on its points.")
    return points


def check_gpx_size(size: int) -> None:
    """Refuse a file by its size alone: call it before reading an upload into memory."""
    if size > settings.GPX_MAX_BYTES:
        raise GPXError(
            f"The file is {size / 1e6:.1f} MB; the limit is {settings.GPX_MAX_BYTES / 1e6:.1f} MB."
        )


def _check_limits(data: bytes) -> None:
    check_gpx_size(len(data))
    points = _count_points(data)
    if points > settings.GPX_MAX_POINTS:
        raise GPXError(f"The file has {points:,} points; the limit is {settings.GPX_MAX_POINTS:,}.")


def _count_points(data: bytes) -> int:
    """Count <trkpt> and <rtept> tags without parsing.

    bytes.count is some twenty times faster than the regex on a file near the size limit;
    the regex is only needed for namespace-prefixed tags (<gpx:trkpt>), which are rare.
    """
    if b":trkpt" in data or b":rtept" in data:
        return sum(1 for _ in _POINT_TAG.finditer(data))
    return data.count(b"<trkpt") + data.count(b"<rtept")


class _NoTree:
    """A parser target with no callbacks: the XML is checked, no element is built."""


def _decode(data: bytes) -> str:
    if not data.strip():
        raise GPXError("The file is empty.")
    declared = _ENCODING_DECLARATION.match(data)
    encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError) as error:
        raise GPXError(f"The file is not readable as {encoding} text: {error}.") from error


def _refuse_dtd_and_broken_xml(text: str) -> None:
    # A streaming check: expat alone, no tree, so it costs little time and no memory
    # before gpxpy parses the file for real.
    parser = defusedxml.ElementTree.DefusedXMLParser(target=_NoTree(), forbid_dtd=True)
    try:
        parser.feed(text)
        parser.close()
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden) as error:
        raise GPXError(
            "The file declares a DTD or entities, which are not allowed in GPX uploads."
        ) from error
    except defusedxml.ElementTree.ParseError as error:
        line, column = error.position
        message = str(error).split(":")[0]
        raise GPXError(
            f"The file is not well-formed XML: {message} at line {line}, column {column}."
        ) from error


def _reason(error: Exception) -> str:
    return str(error).strip().rstrip(".")


def _course_segments(document: gpxpy.gpx.GPX) -> list[list[gpxpy.gpx.GPXTrackPoint]]:
    """Tracks' segments in file order, empty ones skipped; the routes when there is no track."""
    segments = [s.points for t in document.tracks for s in t.segments if s.points]
    if not segments:
        segments = [r.points for r in document.routes if r.points]
    return segments


def _build_course(
    document: gpxpy.gpx.GPX, segments: list[list[gpxpy.gpx.GPXTrackPoint]]
) -> ParsedCourse:
    points: list[CoursePoint] = []
    climb = descent = 0.0
    recorded = 0.0
    has_times = False
    distance = 0.0
    for segment in segments:
        previous = None
        for point in segment:
            _validate_point(point, len(points) + 1)
            if previous is not None:
                distance += gpxpy.geo.distance(
                    previous.latitude, previous.longitude, None,
                    point.latitude, point.longitude, None,
                )  # fmt: skip
            points.append(CoursePoint(point.latitude, point.longitude, point.elevation, distance))
            previous = point
        up, down = gpxpy.geo.calculate_uphill_downhill([p.elevation for p in segment])
        climb += up
        descent += down
        moving = _moving_seconds([p.time for p in segment])
        if moving is not None:
            has_times = True
            recorded += moving
    if len(points) < 2 or distance <= 0:
        raise GPXError("The course needs at least two distinct points.")
    return ParsedCourse(
        name=_course_name(document),
        points=points,
        waypoints=[
            Waypoint(w.name or f"Waypoint {i}", w.latitude, w.longitude)
            for i, w in enumerate(document.waypoints, start=1)
            if _is_valid_coordinate(w.latitude, w.longitude)
        ],
        climb_m=climb,
        descent_m=descent,
        recorded_seconds=recorded if has_times and recorded > 0 else None,
        segments=len(segments),
    )


def _validate_point(point: gpxpy.gpx.GPXTrackPoint, number: int) -> None:
    if not _is_valid_coordinate(point.latitude, point.longitude):
        raise GPXError(
            f"Point {number} has an invalid position "
            f"(latitude {point.latitude}, longitude {point.longitude})."
        )
    if point.elevation is not None and not math.isfinite(point.elevation):
        raise GPXError(f"Point {number} has an invalid elevation ({point.elevation}).")


def _is_valid_coordinate(latitude: float | None, longitude: float | None) -> bool:
    return (
        latitude is not None
        and longitude is not None
        and math.isfinite(latitude)
        and math.isfinite(longitude)
        and -90 <= latitude <= 90
        and -180 <= longitude <= 180
    )


def _moving_seconds(times: list[datetime | None]) -> float | None:
    """Seconds between consecutive timed points; backwards jumps and long pauses skipped."""
    timed = [t for t in times if t is not None]
    if len(timed) < 2:
        return None
    total = 0.0
    for earlier, later in itertools.pairwise(timed):
        delta = (later - earlier).total_seconds()
        if 0 < delta <= MAX_MOVING_GAP_SECONDS:
            total += delta
    return total


def _course_name(document: gpxpy.gpx.GPX) -> str:
    for candidate in [*(t.name for t in document.tracks), *(r.name for r in document.routes)]:
        if candidate and candidate.strip():
            return candidate.strip()
    return (document.name or "").strip()
