"""Course geometry: position, elevation and gradient at a distance along the course."""

import numpy as np
import pytest

from simulator.geometry import Course, CourseError
from tests.simulation_builders import SKYMARATHON, course_of, parsed

# A straight course due north, 2 km long, rising 10 % all the way.
RAMP = [[46.0 + i * 0.0009, 11.0, 1000.0 + i * 10.0, i * 100.0] for i in range(21)]


def test_point_at_interpolates_between_points():
    course = Course(RAMP)
    assert course.length_m == 2000.0
    assert course.point_at(0.0) == pytest.approx((46.0, 11.0, 1000.0))
    assert course.point_at(2000.0) == pytest.approx((46.018, 11.0, 1200.0))
    assert course.point_at(150.0) == pytest.approx((46.00135, 11.0, 1015.0))


def test_distances_outside_the_course_are_clamped_to_its_ends():
    course = Course(RAMP)
    assert course.point_at(-50.0) == course.point_at(0.0)
    assert course.point_at(9999.0) == course.point_at(2000.0)


def test_locate_many_equals_point_at_each():
    course = course_of(SKYMARATHON)
    distances = np.linspace(0.0, course.length_m, 57)
    lat, lon, ele = course.locate(distances)
    for i, d in enumerate(distances):
        assert (lat[i], lon[i], ele[i]) == pytest.approx(course.point_at(float(d)))


def test_gradient_of_a_steady_ramp():
    course = Course(RAMP)
    assert course.gradient_at(1000.0) == pytest.approx(0.10, abs=1e-6)
    assert course.cell_gradients(np.array([500.0, 700.0, 1500.0])) == pytest.approx([0.1, 0.1])


def test_gradient_is_smoothed_over_gps_jitter():
    # +-3 m of noise between points 10 m apart would read as +-60 % point to point.
    jitter = [[46.0 + i * 0.00009, 11.0, 1000.0 + (3.0 if i % 2 else -3.0), i * 10.0]
              for i in range(201)]  # fmt: skip
    gradients = Course(jitter).gradient_at(np.linspace(100.0, 1900.0, 50))
    assert np.max(np.abs(gradients)) < 0.01


def test_climb_of_the_skymarathon_matches_the_imported_course():
    course = course_of(SKYMARATHON)
    assert course.climb_m == pytest.approx(parsed(SKYMARATHON).climb_m, rel=0.1)


def test_missing_elevations_are_interpolated_and_none_at_all_is_flat():
    gappy = [[46.0, 11.0, 100.0, 0.0], [46.001, 11.0, None, 100.0], [46.002, 11.0, 300.0, 200.0]]
    assert Course(gappy).elevation_at(100.0) == pytest.approx(200.0)
    flat = [[46.0, 11.0, None, 0.0], [46.001, 11.0, None, 100.0]]
    assert Course(flat).gradient_at(50.0) == 0.0


def test_segment_gaps_add_no_distance():
    # Two segments: the jump between them has zero length along the course.
    gap = [[46.0, 11.0, 0.0, 0.0], [46.001, 11.0, 0.0, 111.0],
           [46.1, 11.0, 0.0, 111.0], [46.101, 11.0, 0.0, 222.0]]  # fmt: skip
    course = Course(gap)
    assert course.length_m == 222.0
    assert np.isfinite(course.gradient_at(111.0))
    assert course.point_at(222.0)[0] == pytest.approx(46.101)


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        ([[46.0, 11.0, 0.0, 0.0]], "at least two"),
        ([[46.0, 11.0, 0.0, 0.0], [46.0, 11.0, 0.0, 0.0]], "longer than 0"),
        ([[46.0, 11.0, 0.0, 0.0], [46.1, 11.0, 0.0, 50.0], [46.2, 11.0, 0.0, 40.0]], "decrease"),
        ([[46.0, 11.0, 0.0, 0.0], [float("nan"), 11.0, 0.0, 50.0]], "finite"),
    ],
)
def test_impossible_courses_are_refused_with_a_reason(points, reason):
    with pytest.raises(CourseError, match=reason):
        Course(points)
