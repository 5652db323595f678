"""The Celery application: simulation segments and the watchdog, on their own queue.

Reliability settings (DESIGN.md, "Traps"): a task is acknowledged only after it ran
(``task_acks_late``) and put back when its worker process dies (``task_reject_on_worker_
lost``), each worker reserves one task per slot (prefetch 1), and no task runs anywhere
near RabbitMQ's 30-minute consumer timeout (segments last seconds).

Segments mostly wait for the next tick, so the pool is threads: one process runs several
races over one AMQP connection, and its /metrics (started when the worker is ready)
sees what the tasks record. A killed worker drops its connection and RabbitMQ hands its
unacknowledged segments to another worker.

The simulation queue is a quorum queue (`races.relay.broker.simulation_queue`): Celery
(5.5+, ``worker_detect_quorum_queues``, on by default) then sets its prefetch per
consumer, never global QoS, which quorum queues and RabbitMQ 4.3 refuse; with
``worker_prefetch_multiplier=1`` that is one segment per thread. Its pidbox and event
queues are exclusive (Celery 5.5+ defaults, kept explicit below): RabbitMQ 4.3 refuses
transient non-exclusive queues. Every task publish waits for the broker's confirm.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")

from django.conf import settings

from races.operations.metrics_server import connect_celery_signals
from races.relay.broker import CONFIRMED, simulation_queue

app = Celery("raceweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # After a broker restart, Celery (5.3+) lowers the prefetch count while old tasks run
    # and raises it again as they are acked. With this threads pool the worker then
    # sometimes stopped taking any task for minutes (8 deliveries unacked, none run; seen
    # in 3 of 5 broker restarts, in none of 2 without it: tests/test_faults.py). A worker
    # that fetches a few segments too many is harmless: a segment only runs if it owns
    # the race.
    worker_enable_prefetch_count_reduction=False,
    worker_pool="threads",
    worker_concurrency=settings.SIMULATION_CONCURRENCY,
    task_default_queue=settings.SIMULATION_QUEUE,
    task_queues=[simulation_queue(settings.SIMULATION_QUEUE)],
    task_create_missing_queue_type="quorum",
    worker_detect_quorum_queues=True,
    control_queue_exclusive=True,
    event_queue_exclusive=True,
    broker_transport_options=CONFIRMED,
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    task_time_limit=settings.SIMULATION_SEGMENT_SECONDS + 300,
    beat_schedule={
        "simulation-watchdog": {
            "task": "races.tasks.watchdog",
            "schedule": settings.SIMULATION_WATCHDOG_SECONDS,
            "options": {"expires": settings.SIMULATION_WATCHDOG_SECONDS},
        }
    },
)
app.autodiscover_tasks(["races.simulation"])
connect_celery_signals()
