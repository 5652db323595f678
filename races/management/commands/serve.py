import sys

from daphne.cli import CommandLineInterface
from daphne.server import Server
from django.conf import settings
from django.core.management.base import BaseCommand

# Daphne closes WebSockets after 24 hours by default; ultra races run longer.
WEBSOCKET_TIMEOUT_SECONDS = 7 * 24 * 3600


class Command(BaseCommand):
    help = "Serve RaceWeb with daphne (in embedded mode, the demo races run inside it)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host: str, port: str, **options):
        if settings.EMBEDDED:
            from races.simulation import embedded_runner as embedded_simulation

            embedded_simulation.start()  # the demo races move without Celery or RabbitMQ

        sys.argv = ["daphne"]
        _CommandLine().run(
            [
                "-b", host, "-p", str(port),
                "--websocket_timeout", str(WEBSOCKET_TIMEOUT_SECONDS),
                "raceweb.asgi:application",
            ]
        )  # fmt: skip


class _Server(Server):
    """daphne, plus (embedded mode) the in-process relay started with its event loop."""

    def __init__(self, *args, **kwargs):
        if settings.EMBEDDED:
            from races.relay import embedded

            kwargs["ready_callable"] = embedded.start_when_loop_runs
        super().__init__(*args, **kwargs)


class _CommandLine(CommandLineInterface):
    server_class = _Server
