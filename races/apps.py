from django.apps import AppConfig


class RacesConfig(AppConfig):
    name = "races"
    verbose_name = "Races"

    def ready(self) -> None:
        # The organizer's admin lives in its room; Django's autodiscover looks for races.admin.
        import races.organizer.admin
        import races.organizer.admin_decisions
        import races.trackers.admin  # noqa: F401
        from races import deployment

        # Embedded or distributed, chosen here once: the mode registers the side effects
        # of a status change (run after commit, in its order) and answers every later
        # question about what runs where (races/deployment.py).
        deployment.install(deployment.for_settings())
