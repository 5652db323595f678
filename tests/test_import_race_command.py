"""`manage.py import_race` as an organizer runs it: exit status, one line on stderr, no rows."""

import pytest
from django.core.management import base as management_base
from django.core.management import execute_from_command_line

from races.models import Athlete, Course, Race
from tests.conftest import SAMPLE_GPX
from tests.factories import make_race

pytestmark = pytest.mark.django_db

COURSE = str(SAMPLE_GPX / "trailrun-vtr-classic-2019.gpx")


@pytest.fixture(autouse=True)
def keep_test_database_open(monkeypatch):
    """manage.py closes the connections after a command; the test database must survive it."""
    monkeypatch.setattr(management_base.connections, "close_all", lambda: None)


def run(*args: str, capsys) -> tuple[int, str, str]:
    """Run the command the way manage.py does; return (exit status, stdout, stderr)."""
    try:
        execute_from_command_line(["manage.py", "import_race", *args])
    except SystemExit as exit_:
        status = exit_.code
    else:
        status = 0
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(status: int, err: str, *expected: str) -> None:
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0]


def test_a_good_import_exits_zero_and_says_what_it_created(tmp_path, capsys):
    athletes = tmp_path / "a.csv"
    athletes.write_text("bib,name,gender\n1,Jane,F\n2,Joe,M\n")
    status, out, _ = run(COURSE, "--name", "VTR", "--athletes", str(athletes), capsys=capsys)
    assert status == 0
    assert "Created race 'VTR' (vtr): 14.1 km, 2 athletes" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--slug", "Bad Slug!"], ["--slug:", "letters, numbers, underscores or hyphens"]),
        (["--time-compression", "0"], ["--time-compression:", "greater than or equal to 1"]),
        (["--time-compression", "5000"], ["--time-compression:", "less than or equal to 1000"]),
        (["--time-compression", "nan"], ["--time-compression:", "finite number"]),
    ],
)
def test_a_refused_race_field_is_one_line_and_saves_nothing(args, expected, capsys):
    status, _, err = run(COURSE, "--name", "VTR", *args, capsys=capsys)
    assert_refused(status, err, *expected)
    assert not Race.objects.exists() and not Course.objects.exists()


def test_a_duplicate_slug_is_refused_without_a_traceback(capsys):
    make_race("First", slug="vtr", athletes=2)
    status, _, err = run(COURSE, "--name", "Second", "--slug", "vtr", capsys=capsys)
    assert_refused(status, err, "A race with the slug 'vtr' already exists: choose another slug")
    assert list(Race.objects.values_list("name", flat=True)) == ["First"]
    assert Athlete.objects.count() == 2


def test_a_bad_gpx_is_one_line_and_saves_nothing(capsys):
    status, _, err = run(
        str(SAMPLE_GPX / "hostile-billion-laughs.gpx"), "--name", "X", capsys=capsys
    )
    assert_refused(status, err, "hostile-billion-laughs.gpx", "DTD or entities")
    assert not Race.objects.exists()


def test_a_bad_csv_lists_its_bad_lines_on_one_line_and_saves_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("bib,name,gender\n1,Jane,F\n2,Joe,robot\n3,,M\n")
    status, _, err = run(COURSE, "--name", "Y", "--athletes", str(bad), capsys=capsys)
    assert_refused(status, err, "line 3: gender 'robot'", "line 4: name must be")
    assert not Race.objects.exists() and not Athlete.objects.exists()
