"""`manage.py spectator_link <slug> --hours 48 --label press`: a private race's share link."""

from django.core.management.base import BaseCommand, CommandError

from races.models import Race
from races.spectators import tokens


class Command(BaseCommand):
    help = "Print a share link (or just its token) that lets its holder watch a private race."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--hours", type=float, default=48.0, help="Valid for (default 48).")
        parser.add_argument("--label", default="", help="Who it is for; revocable by label.")
        parser.add_argument(
            "--base-url", default="http://localhost:8000", help="The site's address."
        )
        parser.add_argument("--token-only", action="store_true", help="Print only the token.")

    def handle(self, *args, slug: str, hours: float, label: str, base_url: str, **options):
        race = Race.objects.filter(slug=slug).first()
        if race is None:
            raise CommandError(f"No race with the slug {slug!r}.")
        if not 0 < hours <= 24 * 366:
            raise CommandError("--hours must be more than 0 and at most a year (8784).")
        if len(label) > tokens.MAX_LABEL:
            raise CommandError(f"--label is longer than {tokens.MAX_LABEL} characters.")
        token = tokens.mint(slug, hours, label)
        if options["token_only"]:
            self.stdout.write(token)
            return
        if race.visibility != Race.Visibility.PRIVATE:
            self.stderr.write(f"Note: {race.name} is {race.visibility}; its page needs no link.")
        self.stdout.write(f"{base_url.rstrip('/')}{race.get_absolute_url()}#access={token}")
