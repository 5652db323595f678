"""Deleting a race in the admin removes its exchange and relay queue from the broker."""

import logging

import pytest
from amqp.exceptions import NotFound
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from kombu import Connection

from races import wire
from races.models import Position, Race
from races.organizer import lifecycle
from races.relay import broker
from tests.factories import make_race, unique_name

pytestmark = pytest.mark.django_db


def broker_has(url: str, kind: str, name: str) -> bool:
    with Connection(url) as conn:
        channel = conn.channel()
        try:
            if kind == "queue":
                channel.queue_declare(queue=name, passive=True)
            else:
                channel.exchange_declare(exchange=name, type="fanout", passive=True)
        except NotFound:
            return False
        return True


def delete_in_admin(client, race: Race, capture) -> None:
    with capture(execute=True):
        response = client.post(
            reverse("admin:races_race_delete", args=[race.pk]), {"post": "yes"}, follow=True
        )
    assert "was deleted successfully" in response.content.decode()


def test_deleting_a_race_removes_its_exchange_and_queue(
    admin_client, rabbitmq_url, django_capture_on_commit_callbacks
):
    race = make_race(unique_name("Deleted"), athletes=2)
    with override_settings(AMQP_URL=rabbitmq_url, EMBEDDED=False):
        broker.declare_race(race)
        assert broker_has(rabbitmq_url, "queue", wire.relay_queue_name(race.slug))
        assert broker_has(rabbitmq_url, "exchange", race.exchange_name)
        delete_in_admin(admin_client, race, django_capture_on_commit_callbacks)
    assert not Race.objects.filter(pk=race.pk).exists()
    assert not broker_has(rabbitmq_url, "queue", wire.relay_queue_name(race.slug))
    assert not broker_has(rabbitmq_url, "exchange", race.exchange_name)


def test_a_broker_that_is_away_does_not_break_the_delete(
    admin_client, django_capture_on_commit_callbacks, caplog
):
    race = make_race(unique_name("Deleted"), athletes=2)
    nowhere = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1
    with override_settings(AMQP_URL=nowhere, EMBEDDED=False), caplog.at_level(logging.WARNING):
        delete_in_admin(admin_client, race, django_capture_on_commit_callbacks)
    assert not Race.objects.filter(pk=race.pk).exists()
    assert "could not be removed" in caplog.text


def test_a_deleted_race_takes_its_positions_even_those_stored_while_it_was_deleted(
    django_capture_on_commit_callbacks,
):
    """Positions have no foreign-key constraint in the database (models/live.py): a race
    deleted while it runs must leave none behind, even one a relay committed between the
    delete of the race's positions and of the race itself."""
    race = lifecycle.start_race(make_race(unique_name("Positions"), athletes=2))
    race_id, athlete_id = race.pk, race.athletes.first().pk

    def position(seq: int) -> Position:
        return Position(
            race_id=race_id, athlete_id=athlete_id, seq=seq, time=timezone.now(),
            latitude=46.0, longitude=11.0, distance_m=10.0 * seq, event="running",
        )  # fmt: skip

    position(1).save()
    with django_capture_on_commit_callbacks(execute=True):
        race.delete()
        position(2).save()  # the relay's frame, between the positions' delete and the commit
    assert not Position.objects.filter(race_id=race_id).exists()
    assert not Position.objects.filter(athlete_id=athlete_id).exists()
