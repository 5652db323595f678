from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from races.organizer.course_import import create_race
from races.organizer.gpx import GPXError, check_gpx_size
from races.organizer.start_list import StartListError, parse_start_list


class Command(BaseCommand):
    help = "Create a draft race from a GPX course and, optionally, a CSV start list."

    def add_arguments(self, parser):
        parser.add_argument("course", type=Path, help="GPX file of the course")
        parser.add_argument("--name", required=True, help="Name of the race")
        parser.add_argument("--slug", help="URL name (default: from the name)")
        parser.add_argument(
            "--athletes", type=Path, help="CSV start list: bib,name,gender[,category,pace]"
        )
        parser.add_argument("--time-compression", type=float, default=1.0)

    def handle(
        self, *args, course: Path, name: str, slug: str | None, athletes: Path | None, **options
    ):
        rows = None
        try:
            if athletes:
                rows = parse_start_list(athletes.read_text(encoding="utf-8-sig"))
            check_gpx_size(course.stat().st_size)  # before the file is read into memory
            race = create_race(
                name, course.name, course.read_bytes(), rows,
                slug=slug, time_compression=options["time_compression"],
            )  # fmt: skip
        except OSError as error:
            raise CommandError(f"Cannot read {error.filename}: {error.strerror}") from error
        except GPXError as error:
            raise CommandError(f"{course}: {error}") from error
        except StartListError as error:
            raise CommandError(f"{athletes}: " + "\n".join(error.problems)) from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{athletes}: the start list is not UTF-8 text") from error
        self.stdout.write(
            f"Created race {race.name!r} ({race.slug}): {race.course.length_m / 1000:.1f} km, "
            f"{race.athletes.count()} athletes, {race.checkpoints.count()} checkpoints."
        )
