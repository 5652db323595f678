from django.core.management.base import BaseCommand

from races.organizer.demo import load_demo_races


class Command(BaseCommand):
    help = "Create the demo races from the sample GPX files and start them."

    def add_arguments(self, parser):
        parser.add_argument("--no-start", action="store_true", help="Create them as drafts only")

    def handle(self, *args, no_start: bool, **options):
        for race in load_demo_races(start=not no_start):
            self.stdout.write(
                f"{race.name}: {race.get_status_display()}, {race.athletes.count()} athletes, "
                f"{race.course.length_m / 1000:.1f} km, {race.time_compression:g}x"
            )
