"""`manage.py prune_audit`: delete audit entries older than AUDIT_RETENTION_DAYS.

Run it from a loop or a cron job, like healthchecks' `prunepings`: it is idempotent and
cheap when there is nothing to delete.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from races.operations import audit


class Command(BaseCommand):
    help = "Delete spectator connections and organizer actions older than AUDIT_RETENTION_DAYS."

    def handle(self, *args, **options):
        connections, actions = audit.prune()
        self.stdout.write(
            f"Deleted {connections} spectator connections and {actions} organizer actions "
            f"older than {settings.AUDIT_RETENTION_DAYS} days."
        )
