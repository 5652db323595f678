"""Deleting a race in the admin removes its exchange and relay queue from the broker."""

import logging

import pytest
from amqp.exceptions import NotFound
from django.test import override_settings
from django.urls import reverse
from kombu import Connection

from races import wire
from races.models import Race
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
