from django.apps import AppConfig


class RacesConfig(AppConfig):
    name = "races"
    verbose_name = "Races"

    def ready(self) -> None:
        # The organizer's admin lives in its room; Django's autodiscover looks for races.admin.
        import races.organizer.admin  # noqa: F401
        from races.organizer import broker_cleanup, lifecycle
        from races.relay import broker
        from races.simulation import tasks

        # Run after the status change commits, in this order. The exchange and the relay's
        # queue must exist before anything can publish: the simulation is enqueued after
        # declare_race (append its hook below these).
        lifecycle.on_started.append(broker.declare_race)
        lifecycle.on_started.append(broker.notify_relay)
        lifecycle.on_started.append(tasks.start_simulation)
        lifecycle.on_stopped.append(broker.notify_relay)
        lifecycle.on_reset.append(broker.notify_relay)
        lifecycle.on_deleted.append(broker_cleanup.delete_race_objects)
