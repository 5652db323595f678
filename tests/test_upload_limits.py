"""Course files over GPX_MAX_BYTES are refused by their size alone: no parser runs and
nothing is saved, whether they come through the admin or the import command."""

import gpxpy
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from races.models import Race
from races.organizer import admin_forms, course_import
from tests.conftest import SAMPLE_GPX
from tests.test_admin import ADD_URL, organizer, race_form  # noqa: F401  (organizer: fixture)

pytestmark = pytest.mark.django_db


def oversized_gpx() -> bytes:
    """A real course padded with whitespace to one byte over the (default) limit."""
    data = (SAMPLE_GPX / "trailrun-vtr-classic-2019.gpx").read_bytes()
    return data + b" " * (settings.GPX_MAX_BYTES + 1 - len(data))


@pytest.fixture
def parser_calls(monkeypatch) -> list[str]:
    """Records every call into the GPX parsers; the tests expect none."""
    calls: list[str] = []

    def spy(name, real):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(admin_forms, "parse_gpx", spy("admin", admin_forms.parse_gpx))
    monkeypatch.setattr(course_import, "parse_gpx", spy("import", course_import.parse_gpx))
    monkeypatch.setattr(gpxpy, "parse", spy("gpxpy", gpxpy.parse))
    return calls


def test_admin_refuses_an_oversized_course_before_parsing(organizer, parser_calls):  # noqa: F811
    upload = SimpleUploadedFile("huge.gpx", oversized_gpx(), "application/gpx+xml")
    response = organizer.post(ADD_URL, race_form(gpx_file=upload))
    assert response.status_code == 200
    assert "the limit is 10.5 MB" in response.content.decode()
    assert parser_calls == []
    assert not Race.objects.exists()


def test_import_command_refuses_an_oversized_course_before_parsing(tmp_path, parser_calls):
    course = tmp_path / "huge.gpx"
    course.write_bytes(oversized_gpx())
    with pytest.raises(CommandError, match=r"huge\.gpx: The file is 10\.5 MB; the limit is"):
        call_command("import_race", str(course), "--name", "Huge")
    assert parser_calls == []
    assert not Race.objects.exists()


def test_a_tampered_course_preview_is_refused_with_a_reason(organizer):  # noqa: F811
    form = race_form(gpx_cached="not base64 at all!", gpx_cached_name="x.gpx", _save="Save")
    response = organizer.post(ADD_URL, form)
    assert response.status_code == 200
    assert "choose the file again" in response.content.decode()
    assert not Race.objects.exists()
