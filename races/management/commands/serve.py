import importlib
import sys

from daphne.cli import CommandLineInterface
from daphne.server import Server
from django.core.management.base import BaseCommand

from races import deployment

# Daphne closes WebSockets after 24 hours by default; ultra races run longer.
WEBSOCKET_TIMEOUT_SECONDS = 7 * 24 * 3600


class Command(BaseCommand):
    help = "Serve RaceWeb with daphne (in embedded mode, the demo races run inside it)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host: str, port: str, **options):
        # The ASGI application is imported here, before any thread of ours starts: with the
        # embedded simulation's threads importing Django modules at the same moment, daphne's
        # import of it failed once in CI (KeyError: 'django.core.asgi', under coverage).
        importlib.import_module("raceweb.asgi")
        deployment.current().start_with_server()  # embedded: the simulation, in threads

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
        ready = deployment.current().server_ready_callable()
        if ready is not None:
            kwargs["ready_callable"] = ready
        super().__init__(*args, **kwargs)


class _CommandLine(CommandLineInterface):
    server_class = _Server
