"""Turn a validated GPX file (and optionally a start list) into a race, all or nothing."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from races.models import Athlete, Checkpoint, Course, Race
from races.organizer.checkpoints import plan_checkpoints
from races.organizer.gpx import ParsedCourse, parse_gpx
from races.organizer.start_list import StartListRow


def unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "race"
    slug, n = base, 2
    while Race.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def check_setup_editable(race: Race) -> None:
    """Refuse to touch a race's course or athletes unless it is a draft or scheduled.

    Reads the status under the row lock the lifecycle takes, so a Start that commits
    first wins and the upload is refused instead of deleting what the relay refers to.
    """
    if race.pk is None:
        return
    locked = Race.objects.select_for_update().get(pk=race.pk)
    reason = locked.setup_locked_reason()
    if reason:
        raise ValidationError(reason, code="setup_locked")


@transaction.atomic
def attach_course(
    race: Race, filename: str, data: bytes, parsed: ParsedCourse | None = None
) -> Course:
    """Store the course of a race (replacing any earlier one) and plan its checkpoints."""
    check_setup_editable(race)
    parsed = parsed or parse_gpx(data)
    Course.objects.filter(race=race).delete()
    race.checkpoints.all().delete()
    elevations = parsed.elevations
    course = Course.objects.create(
        race=race,
        gpx_filename=filename[:255],
        gpx_source=data,
        points=[
            [p.latitude, p.longitude, p.elevation, round(p.distance_m, 2)] for p in parsed.points
        ],
        length_m=parsed.length_m,
        climb_m=parsed.climb_m,
        descent_m=parsed.descent_m,
        min_elevation_m=min(elevations) if elevations else None,
        max_elevation_m=max(elevations) if elevations else None,
        bounds=parsed.bounds,
        recorded_seconds=parsed.recorded_seconds,
    )
    Checkpoint.objects.bulk_create(
        Checkpoint(race=race, order=i, name=cp.name, distance_m=cp.distance_m, kind=cp.kind)
        for i, cp in enumerate(plan_checkpoints(parsed, settings.CHECKPOINT_INTERVAL_KM))
    )
    return course


@transaction.atomic
def replace_start_list(race: Race, rows: list[StartListRow]) -> int:
    """Replace the race's athletes with the rows of a validated start list."""
    check_setup_editable(race)
    race.athletes.all().delete()
    Athlete.objects.bulk_create(
        Athlete(
            race=race,
            bib=row.bib,
            name=row.name,
            gender=row.gender,
            category=row.category,
            flat_pace_s_per_km=row.flat_pace_s_per_km,
        )
        for row in rows
    )
    return len(rows)


@transaction.atomic
def create_race(
    name: str,
    filename: str,
    gpx_data: bytes,
    start_list: list[StartListRow] | None = None,
    **race_fields,
) -> Race:
    """Create a draft race from GPX bytes, all or nothing.

    Raises GPXError (bad course) or django's ValidationError (bad name, slug, time
    compression...: the model's own `full_clean`, the same checks the admin runs) before
    anything is written.
    """
    parsed = parse_gpx(gpx_data)
    race = Race(name=name, slug=race_fields.pop("slug", None) or unique_slug(name), **race_fields)
    race.full_clean()
    race.save()
    attach_course(race, filename, gpx_data, parsed)
    if start_list:
        replace_start_list(race, start_list)
    return race
