"""`python manage.py relay`: race fanouts in, stored positions and spectator frames out."""

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from races import deployment
from races.operations.garbage_collection import tune_for_long_running_process
from races.operations.metrics_server import start_metrics_server
from races.relay.amqp_intake import AmqpIntake
from races.relay.core import RelayCore

logger = logging.getLogger("races.relay")

READY_TIMEOUT_S = 60


class Command(BaseCommand):
    help = "Relay every running race from its RabbitMQ fanout to its spectators."

    def handle(self, *args, **options):
        if not deployment.current().separate_relay:
            raise CommandError("Set AMQP_URL: in embedded mode the web process relays.")
        start_metrics_server()  # /metrics on METRICS_PORT
        tune_for_long_running_process()
        asyncio.run(run_relay())


async def run_relay() -> None:
    loop = asyncio.get_running_loop()
    core = RelayCore()
    intake = AmqpIntake(settings.AMQP_URL, core, loop)
    core.source = intake
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    intake.start()  # on every (re)connect it binds the control queue, then calls core.start()
    if not await asyncio.to_thread(intake.ready.wait, READY_TIMEOUT_S):
        logger.warning("RabbitMQ not reachable yet; the relay keeps trying")
    frames = asyncio.create_task(core.run())
    logger.info("relay running (%s frames/s per race)", 1 / core.interval)
    await stopping.wait()
    logger.info("relay stopping")
    core.stop()
    await frames
    await core.close()
    await asyncio.to_thread(intake.stop)
    await core.layer.close()
