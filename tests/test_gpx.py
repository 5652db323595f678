"""GPX validation and parsing against the real sample corpus."""

import time
import tracemalloc

import gpxpy
import gpxpy.geo
import pytest

from races.organizer.gpx import GPXError, parse_gpx
from tests.conftest import SAMPLE_GPX

VALID = {
    # file: points as counted in samples/gpx/SOURCES.md
    "skymarathon-rosengarten-schlern-2019.gpx": 2824,
    "ultra-brixen-course-no-times-bom.gpx": 2896,
    "trailrun-vtr-classic-2019.gpx": 530,
    "large-roadtrip-23k-points-12-segments.gpx": 23470,
    "gpx10-hike-korita-zbevnica-4-tracks.gpx": 871,
    "route-only-alltrails-ecology-trail.gpx": 139,
    "run-garmin-connect-hr-cadence.gpx": 988,
    "strava-route-export-no-times.gpx": 113,
    "multi-track-mixed-ele-time.gpx": 1691,
    "timestamps-go-backwards.gpx": 770,
}

REFUSED = {
    "bad-empty-track.gpx": "no course points",
    "bad-truncated.gpx": "not well-formed XML: no element found at line 2, column 67",
    "bad-nan-and-garbage-values.gpx": "not valid GPX",
    "bad-unbound-namespace-prefix.gpx": "unbound prefix at line 21, column 20",
    "hostile-billion-laughs.gpx": "DTD or entities",
}


def gpxpy_length(data: bytes) -> float:
    document = gpxpy.parse(data.decode("utf-8-sig"))
    if any(s.points for t in document.tracks for s in t.segments):
        return document.length_2d()
    return sum(gpxpy.geo.length_2d(r.points) for r in document.routes)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_course_has_every_point_and_gpxpy_length(name, sample_gpx):
    data = sample_gpx(name)
    course = parse_gpx(data)
    assert len(course.points) == VALID[name]
    assert course.length_m == pytest.approx(gpxpy_length(data), rel=0.01)
    distances = [p.distance_m for p in course.points]
    assert distances == sorted(distances), "distance along the course never decreases"


def test_mountain_course_has_its_climb(sample_gpx):
    course = parse_gpx(sample_gpx("skymarathon-rosengarten-schlern-2019.gpx"))
    assert 2500 < course.climb_m < 3300  # SOURCES.md: gain about 2925 m
    assert course.recorded_seconds == pytest.approx(8 * 3600 + 28 * 60, rel=0.01)


def test_planned_course_has_no_recorded_time(sample_gpx):
    assert parse_gpx(sample_gpx("ultra-brixen-course-no-times-bom.gpx")).recorded_seconds is None


def test_backwards_timestamps_give_no_negative_duration(sample_gpx):
    course = parse_gpx(sample_gpx("timestamps-go-backwards.gpx"))
    assert course.recorded_seconds is not None and course.recorded_seconds > 0


def test_route_is_the_course_when_there_is_no_track(sample_gpx):
    course = parse_gpx(sample_gpx("route-only-alltrails-ecology-trail.gpx"))
    assert course.segments == 1 and len(course.points) == 139


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_malformed_and_hostile_files_are_refused_fast_with_their_reason(name, sample_gpx):
    started = time.perf_counter()
    with pytest.raises(GPXError) as refused:
        parse_gpx(sample_gpx(name))
    assert REFUSED[name] in str(refused.value)
    assert time.perf_counter() - started < 1.0


GPX_HEAD = b'<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
POINT_FLOOD_UNDER_THE_BYTE_LIMIT = (
    GPX_HEAD + b"<trk><trkseg>" + b'<trkpt lat="1" lon="1"/>' * 380_000 + b"</trkseg></trk></gpx>"
)
CRAFTED_HOSTILE = {
    "external-entity-xxe": (
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<gpx><trk><name>&xxe;</name></trk></gpx>",
        "DTD or entities",
    ),
    "external-dtd": (
        b'<?xml version="1.0"?><!DOCTYPE gpx SYSTEM "http://example.invalid/gpx.dtd"><gpx/>',
        "DTD or entities",
    ),
    "parameter-entity": (
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY % p SYSTEM "http://example.invalid/x">'
        b"%p;]><gpx/>",
        "DTD or entities",
    ),
    "point-flood-under-the-byte-limit": (
        POINT_FLOOD_UNDER_THE_BYTE_LIMIT,
        "380,000 points; the limit is 100,000",
    ),
}


def refusal_cost(data: bytes) -> tuple[GPXError, float, int]:
    """Refuse `data`; return the error, seconds taken and peak bytes allocated meanwhile."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(GPXError) as refused:
            parse_gpx(data)
        return refused.value, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_corpus_of_hostile_files_is_refused_with_bounded_memory(name, sample_gpx):
    error, seconds, peak = refusal_cost(sample_gpx(name))
    assert REFUSED[name] in str(error)
    assert seconds < 1.0
    assert peak < 16 * 2**20, f"{peak / 2**20:.1f} MiB to refuse {name}"


@pytest.mark.parametrize("name", sorted(CRAFTED_HOSTILE))
def test_crafted_hostile_files_are_refused_fast_with_bounded_memory(name):
    data, reason = CRAFTED_HOSTILE[name]
    error, seconds, peak = refusal_cost(data)
    assert reason in str(error)
    assert seconds < 1.0
    # Nothing is parsed: no copy of a 9 MB file, no tree, no entity expansion.
    assert peak < 16 * 2**20, f"{peak / 2**20:.1f} MiB to refuse {name}"


def test_files_over_the_size_limit_are_refused_before_parsing(settings):
    settings.GPX_MAX_BYTES = 1000
    with pytest.raises(GPXError, match=r"the limit is 0\.0 MB"):
        parse_gpx(b"<gpx>" + b" " * 2000 + b"</gpx>")


def test_files_over_the_point_limit_are_refused(settings, sample_gpx):
    settings.GPX_MAX_POINTS = 500
    with pytest.raises(GPXError, match="530 points; the limit is 500"):
        parse_gpx(sample_gpx("trailrun-vtr-classic-2019.gpx"))


@pytest.mark.parametrize(
    ("lat", "lon", "ele", "reason"),
    [
        ("nan", "10", "1", "invalid position"),
        ("91", "10", "1", "invalid position"),
        ("45", "-181", "1", "invalid position"),
        ("45", "inf", "1", "invalid position"),
        ("45", "10", "1e400", "invalid elevation"),
    ],
)
def test_impossible_coordinates_are_refused(lat, lon, ele, reason):
    gpx = (
        '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="45" lon="10"><ele>1</ele></trkpt>'
        f'<trkpt lat="{lat}" lon="{lon}"><ele>{ele}</ele></trkpt>'
        "</trkseg></trk></gpx>"
    )
    with pytest.raises(GPXError, match=f"Point 2 has an {reason}"):
        parse_gpx(gpx.encode())


def test_empty_and_binary_uploads_are_refused():
    with pytest.raises(GPXError, match="empty"):
        parse_gpx(b"  \n")
    with pytest.raises(GPXError):
        parse_gpx(bytes(range(256)))


def test_every_sample_is_covered():
    samples = {p.name for p in SAMPLE_GPX.glob("*.gpx")}
    assert samples == set(VALID) | set(REFUSED)
