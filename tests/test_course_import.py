import pytest
from django.core.management import CommandError, call_command

from races.models import Athlete, Checkpoint, Course, Race
from races.organizer.course_import import create_race
from races.organizer.gpx import GPXError
from tests.conftest import SAMPLE_GPX
from tests.factories import make_race

pytestmark = pytest.mark.django_db


def test_a_race_is_created_with_course_checkpoints_and_athletes():
    race = make_race(gpx="skymarathon-rosengarten-schlern-2019.gpx", athletes=20)
    course = race.course
    assert course.point_count == 2824
    assert course.points[-1][3] == pytest.approx(course.length_m, abs=0.01)
    assert (
        bytes(course.gpx_source)
        == (SAMPLE_GPX / "skymarathon-rosengarten-schlern-2019.gpx").read_bytes()
    )
    checkpoints = list(race.checkpoints.all())
    assert checkpoints[0].kind == "start" and checkpoints[-1].kind == "finish"
    assert [round(c.distance_m / 1000) for c in checkpoints[1:-1]] == [
        5,
        10,
        15,
        20,
        25,
        30,
        35,
        40,
    ]
    assert race.athletes.count() == 20


def test_gpx_waypoints_become_checkpoints_on_the_course():
    race = make_race(gpx="gpx10-hike-korita-zbevnica-4-tracks.gpx")
    names = [c.name for c in race.checkpoints.all()]
    assert names[0] == "Start" and names[-1] == "Finish"
    distances = [c.distance_m for c in race.checkpoints.all()]
    assert distances == sorted(distances)


REFUSED_SAMPLES = sorted(
    p.name for p in SAMPLE_GPX.glob("*.gpx") if p.name.startswith(("bad-", "hostile-"))
)


@pytest.mark.parametrize("name", REFUSED_SAMPLES)
def test_a_refused_file_leaves_no_rows_behind(name):
    with pytest.raises(GPXError):
        create_race("Broken", name, (SAMPLE_GPX / name).read_bytes())
    assert not Race.objects.exists() and not Course.objects.exists()
    assert not Checkpoint.objects.exists() and not Athlete.objects.exists()


def test_import_race_command_creates_a_race(tmp_path, capsys):
    start_list = tmp_path / "athletes.csv"
    start_list.write_text(
        "bib,name,gender,category,pace\n1,Jane Smith,F,W40,5:10\n2,Joe Bloggs,M,M30,\n"
    )
    call_command(
        "import_race", str(SAMPLE_GPX / "trailrun-vtr-classic-2019.gpx"),
        "--name", "VTR", "--athletes", str(start_list),
    )  # fmt: skip
    race = Race.objects.get(slug="vtr")
    assert race.athletes.count() == 2
    assert "Created race 'VTR' (vtr): 14.1 km, 2 athletes" in capsys.readouterr().out


def test_import_race_command_refuses_bad_input_and_creates_nothing(tmp_path):
    with pytest.raises(CommandError, match="DTD or entities"):
        call_command("import_race", str(SAMPLE_GPX / "hostile-billion-laughs.gpx"), "--name", "X")
    bad_list = tmp_path / "bad.csv"
    bad_list.write_text("bib,name,gender\n1,Jane,F\n2,Joe,robot\n")
    with pytest.raises(CommandError, match="line 3: gender 'robot'"):
        call_command(
            "import_race", str(SAMPLE_GPX / "trailrun-vtr-classic-2019.gpx"),
            "--name", "Y", "--athletes", str(bad_list),
        )  # fmt: skip
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_race", str(tmp_path / "missing.gpx"), "--name", "Z")
    assert not Race.objects.exists()
