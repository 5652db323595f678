"""Embedded mode (no AMQP_URL): tracker fixes go through the door the in-process
simulation uses (`races.relay.embedded.publish`), with no broker anywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from races import deployment
from races.models import Race
from races.relay import embedded
from tests.factories import make_race, unique_name
from tests.tracker_support import recording, token_for, traccar_client_json

pytestmark = pytest.mark.django_db


@override_settings(EMBEDDED=True, AMQP_URL="")
def test_a_fix_reaches_the_embedded_relays_door():
    assert deployment.current() is deployment.EMBEDDED
    race = make_race(unique_name("Embedded"), athletes=2, tracking=Race.Tracking.TRACKED)
    started = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)
    Race.objects.filter(pk=race.pk).update(status=Race.Status.RUNNING, started_at=started)
    athlete = race.athletes.first()
    token = token_for(athlete)
    embedded.stop()  # no core running: batches wait in its buffer, in order
    point = recording(started)[50]
    answer = Client().post("/ingest/osmand/", traccar_client_json(token, point), "application/json")
    assert answer.status_code == 200 and answer.json() == {"published": 1}
    kind, (slug, events) = embedded._waiting[-1]
    assert (kind, slug) == ("events", race.slug)
    assert events[0]["athlete_id"] == athlete.pk and events[0]["source"] == "osmand"
    embedded.stop()
