"""The lifecycle in the admin: buttons with confirmation, and a running race's data guarded."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from races.models import Position, Race
from races.organizer import lifecycle
from races.organizer.course_import import replace_start_list
from races.organizer.start_list import parse_start_list
from tests.factories import make_race

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:races_race_changelist")
NEW_LIST = b"bib,name,gender\n90,New One,F\n91,New Two,M\n92,New Three,M\n"


@pytest.fixture
def organizer(client, admin_user):
    client.force_login(admin_user)
    return client


def change_url(race: Race) -> str:
    return reverse("admin:races_race_change", args=[race.pk])


def lifecycle_url(race: Race, name: str) -> str:
    return reverse("admin:races_race_lifecycle", args=[race.pk, name])


def with_a_position(race: Race) -> Race:
    athlete = race.athletes.first()
    Position.objects.create(
        race=race, athlete=athlete, seq=1, time=race.started_at, latitude=48.0,
        longitude=16.0, distance_m=0.0, event="start",
    )  # fmt: skip
    return race


def running_race() -> Race:
    return with_a_position(lifecycle.start_race(make_race("Vienna Trail", slug="vt", athletes=5)))


def change_form_post(race: Race, **extra) -> dict:
    """What the change page of a draft race posts, as if opened before the race started."""
    data = {
        "name": race.name, "slug": race.slug, "time_compression": "20",
        "tick_seconds": "5", "seed": "42",
        "athletes-TOTAL_FORMS": "0", "athletes-INITIAL_FORMS": "0",
        "checkpoints-TOTAL_FORMS": "0", "checkpoints-INITIAL_FORMS": "0",
        "revoked_labels-TOTAL_FORMS": "0", "revoked_labels-INITIAL_FORMS": "0",
        "ghosts-TOTAL_FORMS": "0", "ghosts-INITIAL_FORMS": "0",
        "visibility": "public",
    }  # fmt: skip
    data.update(extra)
    return data


def test_a_running_race_shows_course_and_start_list_read_only_and_says_why(organizer):
    race = running_race()
    page = organizer.get(change_url(race)).content.decode()
    assert (
        "Vienna Trail is running: its course, start list and simulation settings are fixed" in page
    )
    assert "Stop it, then reset it to draft to change them" in page
    assert 'name="start_list_file"' not in page and 'name="gpx_file"' not in page
    assert "Preview course" not in page
    assert "5 athletes on the start list" in page
    assert 'name="athletes-0-name"' not in page  # the inline is read-only too


def test_a_start_list_upload_on_a_running_race_is_refused_and_deletes_nothing(organizer):
    race = running_race()
    before = sorted(race.athletes.values_list("name", flat=True))
    response = organizer.post(
        change_url(race),
        change_form_post(race, start_list_file=SimpleUploadedFile("new.csv", NEW_LIST)),
        follow=True,
    )
    page = response.content.decode()
    assert "Not imported, nothing changed. Vienna Trail is running" in page
    assert "Imported" not in page
    assert sorted(race.athletes.values_list("name", flat=True)) == before
    assert Position.objects.filter(race=race).count() == 1


def test_no_code_path_replaces_the_athletes_of_a_running_race():
    race = running_race()
    with pytest.raises(ValidationError, match="is running"):
        replace_start_list(race, parse_start_list(NEW_LIST.decode()))
    assert race.athletes.count() == 5 and race.positions.count() == 1


def test_a_draft_race_page_offers_start_with_a_confirmation(organizer):
    race = make_race("Vienna Trail", slug="vt", athletes=3)
    page = organizer.get(change_url(race)).content.decode()
    assert "Start…" in page and "Stop…" not in page and "Reset to draft…" not in page
    assert 'href="/races/vt/"' in page
    confirm = organizer.get(lifecycle_url(race, "start")).content.decode()
    assert "Draft</span> with 3 athletes and 0 recorded positions" in confirm
    assert "The race clock starts now" in confirm
    assert Race.objects.get(pk=race.pk).status == "draft"  # asking changes nothing
    page = organizer.post(lifecycle_url(race, "start"), follow=True).content.decode()
    assert "Vienna Trail: started." in page
    assert Race.objects.get(pk=race.pk).status == "running"
    assert "Stop…" in page and "Start…" not in page


def test_stop_then_reset_from_the_race_page_asks_first_and_reset_clears_positions(organizer):
    race = running_race()
    organizer.post(lifecycle_url(race, "stop"))
    assert Race.objects.get(pk=race.pk).status == "stopped"
    confirm = organizer.get(lifecycle_url(race, "reset")).content.decode()
    assert "1 recorded position" in confirm and "Deletes every recorded position" in confirm
    assert Position.objects.filter(race=race).count() == 1
    page = organizer.post(lifecycle_url(race, "reset"), follow=True).content.decode()
    assert "Vienna Trail: reset to draft." in page
    assert Race.objects.get(pk=race.pk).status == "draft"
    assert not Position.objects.filter(race=race).exists()
    assert 'name="start_list_file"' in page  # editable again


def test_a_refused_button_says_why_on_its_confirmation_page(organizer):
    race = running_race()
    confirm = organizer.get(lifecycle_url(race, "reset")).content.decode()
    assert "cannot become draft: stop it first" in confirm
    assert "Yes, reset" not in confirm
    page = organizer.post(lifecycle_url(race, "reset"), follow=True).content.decode()
    assert "cannot become draft: stop it first" in page
    assert Position.objects.filter(race=race).count() == 1


def test_the_list_action_reset_asks_for_confirmation_first(organizer):
    race = lifecycle.stop_race(running_race())
    selected = {"action": "reset_races", "_selected_action": [race.pk]}
    confirm = organizer.post(LIST_URL, selected).content.decode()
    assert "Vienna Trail (stopped): 1 position will be deleted" in confirm
    assert Race.objects.get(pk=race.pk).status == "stopped"
    assert Position.objects.filter(race=race).count() == 1
    page = organizer.post(LIST_URL, {**selected, "post": "yes"}, follow=True).content.decode()
    assert "Vienna Trail: reset to draft." in page
    assert Race.objects.get(pk=race.pk).status == "draft"
    assert not Position.objects.filter(race=race).exists()


def delete_url(race: Race) -> str:
    return reverse("admin:races_race_delete", args=[race.pk])


def test_a_running_race_cannot_be_deleted_from_its_page_and_the_page_says_why(organizer):
    race = running_race()
    page = organizer.get(change_url(race)).content.decode()
    assert delete_url(race) not in page  # no Delete link
    asked, confirmed = (
        organizer.get(delete_url(race)),
        organizer.post(delete_url(race), {"post": "yes"}),
    )
    for response in (asked, confirmed):
        assert response.status_code == 302 and response["Location"] == change_url(race)
    page = organizer.get(change_url(race)).content.decode()
    assert "Vienna Trail is running: stop it before deleting it" in page
    assert Race.objects.filter(pk=race.pk).exists() and race.positions.count() == 1
    lifecycle.stop_race(race)
    assert delete_url(race) in organizer.get(change_url(race)).content.decode()
    organizer.post(delete_url(race), {"post": "yes"})
    assert not Race.objects.filter(pk=race.pk).exists()


def test_delete_selected_spares_running_races_and_asks_only_about_the_rest(organizer):
    running = running_race()
    draft = make_race("Graz Night Run", slug="gnr", athletes=2)
    selected = {"action": "delete_selected", "_selected_action": [running.pk, draft.pk]}
    confirm = organizer.post(LIST_URL, selected).content.decode()
    assert "Vienna Trail is running: stop it before deleting it" in confirm
    assert "Graz Night Run" in confirm and "Are you sure" in confirm
    organizer.post(LIST_URL, {**selected, "post": "yes"})
    assert list(Race.objects.values_list("name", flat=True)) == ["Vienna Trail"]
    assert running.positions.count() == 1
