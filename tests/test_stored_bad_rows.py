"""Rows stored before validation existed (a slug like "Bad Slug!") never break a page."""

import pytest
from django.urls import reverse

from races.models import Race
from tests.factories import make_race

pytestmark = pytest.mark.django_db


@pytest.fixture
def bad_slug_race():
    race = make_race("Old Race", athletes=2)
    Race.objects.filter(pk=race.pk).update(slug="Bad Slug!", status=Race.Status.FINISHED)
    make_race("Good Race", slug="good-race", athletes=2)
    return Race.objects.get(pk=race.pk)


def test_public_pages_still_answer_with_a_bad_slug_stored(client, bad_slug_race):
    page = client.get("/")
    assert page.status_code == 200 and "Old Race" in page.content.decode()
    api = client.get("/api/races/")
    assert api.status_code == 200
    assert "good-race" in api.content.decode()


def test_the_admin_still_lists_and_opens_a_race_with_a_bad_slug(admin_client, bad_slug_race):
    listing = admin_client.get(reverse("admin:races_race_changelist"))
    assert listing.status_code == 200 and "Old Race" in listing.content.decode()
    change = admin_client.get(reverse("admin:races_race_change", args=[bad_slug_race.pk]))
    assert change.status_code == 200
