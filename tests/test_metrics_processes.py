"""/metrics of the real processes: `manage.py relay` and daphne against the real RabbitMQ,
and a Celery worker's simulation, read over HTTP while a race runs.
"""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from kombu import Connection

from harness.ports import free_port
from harness.spectator_client import Spectator
from harness.waiting import async_wait_until, wait_until
from races import wire
from races.organizer import lifecycle
from races.relay import broker
from tests.conftest import raceweb_processes
from tests.factories import EventFeed, make_race, unique_name
from tests.metrics_support import (
    Scrape,
    assert_promtool_accepts,
    try_scrape,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


# ---- the real processes -------------------------------------------------------------------


@pytest.mark.rabbitmq
async def test_relay_process_and_daphne_export_what_a_running_race_does(rabbitmq_url, tmp_path):
    """`manage.py relay` serves /metrics on METRICS_PORT; daphne on /metrics. Positions
    published into the race's fanout show up in both, and agree."""
    relay_port = free_port()
    # Our own control fanout: relays of other test runs on the shared broker never hear
    # our race start (and never take its queue).
    control = f"{wire.CONTROL_EXCHANGE}.test-{uuid.uuid4().hex[:8]}"
    processes = raceweb_processes(
        rabbitmq_url, tmp_path, METRICS_PORT=str(relay_port), RELAY_CONTROL_EXCHANGE=control
    )
    race = await sync_to_async(make_race)(
        unique_name("Metrics"), athletes=3, time_compression=500.0
    )
    try:
        await asyncio.to_thread(processes.relay)
        web = await asyncio.to_thread(processes.web)
        relay_metrics = f"http://127.0.0.1:{relay_port}/metrics"
        spectator = await Spectator(f"{web.replace('http', 'ws')}/ws/races/{race.slug}/").open()
        await async_wait_until(lambda: spectator.of_type("snapshot"), 15, "the snapshot")

        distributed = {"EMBEDDED": False, "AMQP_URL": rabbitmq_url}
        with override_settings(**distributed, RELAY_CONTROL_EXCHANGE=control):
            race = await sync_to_async(lifecycle.start_race)(race)  # binds the relay queue
        feed = await sync_to_async(EventFeed)(race)
        published = feed.starts() + feed.tick(30) + feed.tick(60)
        await asyncio.to_thread(publish, rabbitmq_url, race.slug, published)

        def relay_has_all() -> Scrape | None:
            scrape = try_scrape(relay_metrics)
            stored = scrape and scrape("raceweb_relay_positions_stored_total", race=race.slug)
            return scrape if stored == len(published) else None

        relay = await asyncio.to_thread(lambda: wait_until(relay_has_all, 30, "relay to store"))
        assert relay("raceweb_relay_positions_consumed_total", race=race.slug) == len(published)
        assert relay("raceweb_relay_batch_insert_seconds_count") >= 1
        assert relay("raceweb_relay_group_send_seconds_count") >= 1
        assert_promtool_accepts(relay)

        def web_has_all() -> Scrape | None:
            scrape = try_scrape(f"{web}/metrics")
            if scrape is None:
                return None
            timed = scrape("raceweb_position_delivery_seconds_count", race=race.slug)
            return scrape if timed == len(published) else None

        daphne = await asyncio.to_thread(lambda: wait_until(web_has_all, 30, "web to deliver"))
        assert daphne("raceweb_websocket_connections", endpoint="race") == 1
        updates = spectator.of_type("update")
        races = spectator.of_type("race")  # the race started: one message each
        assert daphne("raceweb_frames_sent_total", endpoint="race") == 1 + len(updates) + len(races)
        assert daphne("raceweb_positions_sent_total", endpoint="race") == sum(
            len(update["athletes"]) for update in updates
        )
        assert daphne("raceweb_races_running") == 1
        assert_promtool_accepts(daphne)
        await spectator.close()
    finally:
        await asyncio.to_thread(processes.stop_all)
        print(processes.logs())  # shown when the test fails
        await asyncio.to_thread(delete_amqp, rabbitmq_url, race.slug, control)


@pytest.mark.rabbitmq
def test_celery_worker_serves_what_its_simulation_publishes(rabbitmq_url, tmp_path):
    """A real worker: /metrics on METRICS_PORT from worker_ready, moved by its tasks."""
    worker_port = free_port()
    queue = f"simulation-test-{uuid.uuid4().hex[:8]}"
    control = f"{wire.CONTROL_EXCHANGE}.test-{uuid.uuid4().hex[:8]}"
    distributed = {
        "EMBEDDED": False,
        "AMQP_URL": rabbitmq_url,
        "SIMULATION_QUEUE": queue,
        "RELAY_CONTROL_EXCHANGE": control,
    }
    processes = raceweb_processes(
        rabbitmq_url,
        tmp_path,
        METRICS_PORT=str(worker_port),
        SIMULATION_QUEUE=queue,
        SIMULATION_SEGMENT_SECONDS="2",
        RELAY_CONTROL_EXCHANGE=control,
    )
    # 100x with 10 s ticks: a tick every 0.1 s of wall time, the race lasts about a minute.
    race = make_race(unique_name("Worker"), athletes=3, time_compression=100.0, tick_seconds=10.0)
    try:
        processes.worker(concurrency=2, heartbeat=False)
        with override_settings(**distributed):
            race = lifecycle.start_race(race)

        def published_some() -> Scrape | None:
            # The worker serves /metrics from its worker_ready signal, about when it logs
            # that it is ready: it may not answer yet.
            scrape = try_scrape(f"http://127.0.0.1:{worker_port}/metrics")
            published = scrape and scrape(
                "raceweb_worker_positions_published_total", race=race.slug
            )
            return scrape if published and published >= 3 * 5 else None

        worker = wait_until(published_some, 30, "the worker to publish five ticks")
        # One batch per wake-up (a late one catches up several ticks), each confirmed.
        batches = worker("raceweb_worker_tick_seconds_count")
        assert batches >= 2
        assert worker("raceweb_worker_publish_confirm_seconds_count") >= batches
        assert worker("raceweb_worker_publish_confirm_seconds_sum") > 0
        assert worker("process_resident_memory_bytes") > 0
        assert_promtool_accepts(worker)
    finally:  # stopping the worker ends the race's publishing; its rows go with the test
        processes.stop_all()
        print(processes.logs())  # shown when the test fails
        delete_amqp(rabbitmq_url, race.slug, control)
        with Connection(rabbitmq_url) as connection:
            connection.default_channel.queue_delete(queue)
            connection.default_channel.exchange_delete(queue)


def publish(url: str, slug: str, events: list[dict]) -> None:
    """Into the race's fanout, as the simulator does (persistent JSON messages)."""
    with Connection(url) as connection:
        producer = connection.Producer()
        for event in events:
            producer.publish(
                json.dumps(event),
                exchange=broker.race_exchange(slug),
                content_type="application/json",
                delivery_mode=2,
            )


def delete_amqp(url: str, slug: str, control_exchange: str) -> None:
    with Connection(url) as connection:
        channel = connection.default_channel
        channel.queue_delete(wire.relay_queue_name(slug))
        channel.exchange_delete(wire.exchange_name(slug))
        channel.exchange_delete(control_exchange)
