"""The pacing model against a real race: Rosengarten Schlern Skymarathon 2019.

The recording (samples/gpx, a Garmin watch, 43.9 km, ~2,900 m of climbing) took
8 h 28 min from start to finish. The simulated athlete gets the recording's *flat pace*
and nothing else from it; the model must then land within 10 % of the real time.

How the flat pace is derived, independently of the finish time: cut the recording into
200 m stretches; keep the flat ones (smoothed gradient within +-3 %); each stretch's pace
is divided by the Riegel fatigue factor at its effort distance (the model's definition
of flat pace is "fresh, over a 10 km effort"); the median of those is the flat pace.
"""

from datetime import datetime

import gpxpy
import numpy as np

from races.organizer.checkpoints import plan_checkpoints
from simulator.pacing import AthleteSpec, effort_km, riegel_fatigue
from simulator.race import CheckpointSpec, RaceSimulation
from tests.conftest import SAMPLE_GPX
from tests.simulation_builders import SKYMARATHON, START, course_of, parsed

STRETCH_M = 200.0
FLAT_GRADIENT = 0.03


def recorded_seconds_at_points() -> np.ndarray:
    document = gpxpy.parse((SAMPLE_GPX / SKYMARATHON).read_text())
    times: list[datetime] = [p.time for t in document.tracks for s in t.segments for p in s.points]
    return np.array([(t - times[0]).total_seconds() for t in times])


def test_recorded_flat_pace_reproduces_the_skymarathon_time():
    course = course_of(SKYMARATHON)
    recorded = recorded_seconds_at_points()
    assert len(recorded) == len(course.distances)
    recorded_total = recorded[-1]

    edges = np.arange(0.0, course.length_m, STRETCH_M)
    times = np.interp(edges, course.distances, recorded)
    gradients = course.cell_gradients(edges)
    paces = np.diff(times) / (STRETCH_M / 1000)
    mids = (edges[:-1] + edges[1:]) / 2
    fatigue = riegel_fatigue(effort_km(mids, course.climb_to(mids)))
    flat = np.abs(gradients) < FLAT_GRADIENT
    flat_pace = float(np.median(paces[flat] / fatigue[flat]))

    runner = AthleteSpec(1, "1", "Recorded Runner", "male", "M40", flat_pace_s_per_km=flat_pace)
    race = RaceSimulation(
        slug="realism",
        course=course,
        checkpoints=[
            CheckpointSpec(cp.name, cp.distance_m)
            for cp in plan_checkpoints(parsed(SKYMARATHON), 5.0)
            if cp.kind == "checkpoint"
        ],
        athletes=[runner],
        seed=2019,
        tick_seconds=10.0,
        started_at=START,
        dnf_rate_per_effort_km=0.0,
    )
    simulated_total = float(race.timeline.finish_s[0])

    knots = race.timeline.knots
    moving = np.diff(knots) > 0
    cell_speed = np.diff(knots)[moving] / np.diff(race.timeline.times[0])[moving]
    cell_grade = course.cell_gradients(knots)[moving]
    climbing = cell_speed[cell_grade > 0.05].mean()
    descending = cell_speed[cell_grade < -0.05].mean()

    print(f"\nflat pace derived from {flat.sum()} flat 200 m stretches: {flat_pace:.0f} s/km")
    print(f"recorded  {recorded_total / 3600:5.2f} h   simulated {simulated_total / 3600:5.2f} h"
          f"   ({simulated_total / recorded_total - 1:+.1%})")  # fmt: skip
    arrival = np.r_[True, moving]  # skip the departure knot of each checkpoint stop
    sim_times = np.interp(edges, knots[arrival], race.timeline.times[0][arrival])
    for lo, hi in [(-1, -0.15), (-0.15, -0.05), (-0.05, 0.05), (0.05, 0.15), (0.15, 1)]:
        band = (gradients >= lo) & (gradients < hi)
        sim_pace = np.diff(sim_times)[band].sum() / (band.sum() * STRETCH_M / 1000)
        real_pace = np.diff(times)[band].sum() / (band.sum() * STRETCH_M / 1000)
        print(
            f"  gradient {lo:+.2f}..{hi:+.2f}: recorded {real_pace:5.0f} s/km,"
            f" simulated {sim_pace:5.0f} s/km"
        )

    assert 300 < flat_pace < 700
    assert abs(simulated_total / recorded_total - 1) <= 0.10
    assert climbing < 0.8 * descending
