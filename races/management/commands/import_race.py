"""`manage.py import_race`: the command-line twin of the admin's Add race, same checks."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from races.organizer.course_import import create_race
from races.organizer.gpx import GPXError, check_gpx_size
from races.organizer.start_list import StartListError, parse_start_list

# Which command-line option a refused model field came from, so the error names it.
OPTIONS = {"name": "--name", "slug": "--slug", "time_compression": "--time-compression"}
MAX_PROBLEMS_SHOWN = 5


def validation_line(error: ValidationError) -> str:
    """One line per refused race: `--slug: Enter a valid "slug"...; --time-compression: ...`."""
    parts = []
    for field, messages in error.message_dict.items():
        label = OPTIONS.get(field, field.replace("_", " "))
        parts.extend(f"{label}: {message}" for message in messages)
    return "; ".join(parts)


def start_list_line(problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    more = len(problems) - MAX_PROBLEMS_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


class Command(BaseCommand):
    help = (
        "Create a draft race from a GPX course and, optionally, a CSV start list. "
        "Nothing is saved if any input is refused (exit status 1, one line saying why)."
    )

    def add_arguments(self, parser):
        parser.add_argument("course", type=Path, help="GPX file of the course")
        parser.add_argument("--name", required=True, help="Name of the race")
        parser.add_argument(
            "--slug", help="URL name: letters, digits, - and _ (default: from the name)"
        )
        parser.add_argument(
            "--athletes", type=Path, help="CSV start list: bib,name,gender[,category,pace]"
        )
        parser.add_argument(
            "--time-compression",
            type=float,
            default=1.0,
            help="Race seconds per wall-clock second, 1 to 1000 (default 1: real time)",
        )

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
            raise CommandError(f"{athletes}: {start_list_line(error.problems)}") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{athletes}: the start list is not UTF-8 text") from error
        except ValidationError as error:
            raise CommandError(f"Race refused: {validation_line(error)}") from error
        self.stdout.write(
            f"Created race {race.name!r} ({race.slug}): {race.course.length_m / 1000:.1f} km, "
            f"{race.athletes.count()} athletes, {race.checkpoints.count()} checkpoints."
        )
