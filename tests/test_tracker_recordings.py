"""An athlete's recorded GPX joins a tracked race after the fact: stored as positions (and
results) once the race is over, published into the fanout like a tracker while it runs.

The recording is the real VTR Classic one (samples/gpx, see tests/tracker_support.py),
which is also the course: the athlete's finish time must be the recording's duration.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from races import wire
from races.history.views import clock_text
from races.models import OrganizerAction, Position, Race
from races.trackers import recordings
from tests.conftest import SAMPLE_GPX
from tests.factories import make_race, unique_name
from tests.tracker_support import RECORDING, FanoutTap, remove_from_broker, start_tracked_race

RECORDED_S = 6880.0  # 11:10:13 -> 13:04:53 in the file


def shifted_recording(start) -> bytes:
    """The recording's bytes with its times moved to start at `start` (same format)."""
    text = (SAMPLE_GPX / RECORDING).read_text(encoding="utf-8")
    first = datetime.fromisoformat("2017-04-30T11:10:13+00:00")

    def move(match: re.Match) -> str:
        moment = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        return "<time>" + wire.iso(moment - first + start) + "</time>"

    return re.sub(r"<time>(2017-[^<]+)</time>", move, text).encode()


def finished_tracked_race() -> Race:
    race = make_race(unique_name("Over"), athletes=3, tracking=Race.Tracking.TRACKED)
    started = (timezone.now() - timedelta(hours=5)).replace(microsecond=0)
    Race.objects.filter(pk=race.pk).update(
        status=Race.Status.FINISHED, started_at=started, finished_at=started + timedelta(hours=3)
    )
    race.refresh_from_db()
    return race


@pytest.mark.django_db
def test_a_recording_after_the_race_joins_positions_and_results():
    race = finished_tracked_race()
    athlete = race.athletes.order_by("pk").first()
    admin = User.objects.create_superuser("boss", password="x")
    client = Client()
    client.force_login(admin)
    upload = SimpleUploadedFile("jane.gpx", shifted_recording(race.started_at))
    page = client.post(
        reverse("admin:races_devicetoken_recording"), {"athlete": athlete.pk, "gpx": upload}
    )
    assert page.status_code == 200 and "530 points added" in page.content.decode()
    assert Position.objects.filter(race=race, athlete=athlete).count() == 530
    seqs = Position.objects.filter(race=race).values_list("seq", "time")
    assert all(seq == wire.tracker_seq(athlete.pk, time) for seq, time in seqs)
    results = client.get(f"/api/races/{race.slug}/results").json()
    row = next(r for r in results["results"] if r["id"] == athlete.pk)
    assert row["status"] == wire.FINISHED and row["rank"] == 1
    assert RECORDED_S - 60 <= row["finish_s"] <= RECORDED_S
    assert (
        clock_text(row["finish_s"]) in client.get(f"/races/{race.slug}/results/").content.decode()
    )
    assert OrganizerAction.objects.filter(action="gpx_recording", race_slug=race.slug).exists()
    # Sent again (the organizer clicked twice): stored once.
    again = recordings.join(athlete, shifted_recording(race.started_at))
    assert again.startswith("0 points added")
    assert Position.objects.filter(race=race, athlete=athlete).count() == 530


@pytest.mark.django_db
def test_a_recording_is_refused_with_a_reason():
    race = finished_tracked_race()
    athlete = race.athletes.first()
    with pytest.raises(recordings.RecordingRefused, match="between the race's start"):
        recordings.join(athlete, shifted_recording(race.started_at - timedelta(days=3)))
    with pytest.raises(recordings.RecordingRefused, match="no timed points"):
        recordings.join(athlete, (SAMPLE_GPX / "strava-route-export-no-times.gpx").read_bytes())
    with pytest.raises(recordings.RecordingRefused, match="DTD"):
        recordings.join(athlete, (SAMPLE_GPX / "hostile-billion-laughs.gpx").read_bytes())
    simulated = make_race(unique_name(), athletes=1, status=Race.Status.FINISHED)
    with pytest.raises(recordings.RecordingRefused, match="simulated"):
        recordings.join(simulated.athletes.first(), shifted_recording(timezone.now()))
    assert not Position.objects.exists()


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_a_recording_while_the_race_runs_goes_through_the_fanout(rabbitmq_url):
    race = start_tracked_race(rabbitmq_url, ago=timedelta(hours=3))
    athlete = race.athletes.first()
    tap = FanoutTap(rabbitmq_url, race)
    try:
        with override_settings(AMQP_URL=rabbitmq_url, EMBEDDED=False):
            summary = recordings.join(athlete, shifted_recording(race.started_at))
        assert summary.startswith("530 points published")
        events = tap.drain()
    finally:
        tap.close()
        remove_from_broker(rabbitmq_url, race)
    assert len(events) == 530
    assert {e["source"] for e in events} == {"gpx"} and {e["athlete_id"] for e in events} == {
        athlete.pk
    }
    assert all("seq" not in e and "distance_m" not in e for e in events)
