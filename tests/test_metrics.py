"""Prometheus metrics as a scraper sees them: every process's /metrics parses with
prometheus_client's parser, passes `promtool check metrics`, and its values move when
spectators connect and leave and when a race runs.

In-process tests drive the real WebSocket endpoints (WebsocketCommunicator) and a relay
core on the in-memory layer, and read the web's /metrics through its ASGI application;
the live test runs `manage.py relay` and daphne as processes against the real RabbitMQ
and reads both /metrics endpoints over HTTP.
"""

import asyncio
import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test import override_settings
from kombu import Connection
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from races import wire
from races.models import Position, Race
from races.operations import metrics
from races.operations.metrics_server import start_metrics_server
from races.organizer import lifecycle
from races.relay import broker
from races.relay.core import RelayCore
from races.spectators import hub as hubs
from races.spectators import race_hub
from races.spectators.routing import websocket_urlpatterns
from raceweb.asgi import django_asgi_app
from tests.conftest import require_executable
from tests.factories import EventFeed, make_race, started_race, unique_name
from tests.live_processes import Processes, Spectator, async_wait_for, wait_for
from tests.private_rabbitmq import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


class Scrape:
    """One /metrics page, parsed with prometheus_client's parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in self.families.values()
            for s in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        """A sample's value; 0 when the series does not exist (yet)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def labels_of(self, name: str) -> list[dict]:
        return [dict(labels) for (sample, labels) in self.samples if sample == name]


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after(name, **labels) - before(name, **labels)


sockets = URLRouter(websocket_urlpatterns)


async def scrape_web() -> Scrape:
    communicator = HttpCommunicator(
        django_asgi_app, "GET", "/metrics", headers=[(b"host", b"localhost")]
    )
    response = await communicator.get_response(timeout=15)
    assert response["status"] == 200
    content_type = dict(response["headers"])[b"Content-Type"].decode()
    assert content_type.startswith("text/plain; version=")
    return Scrape(response["body"].decode())


def scrape_http(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as response:
        return Scrape(response.read().decode())


def try_scrape(url: str) -> Scrape | None:
    """None while the process is not serving /metrics yet."""
    try:
        return scrape_http(url)
    except OSError:
        return None


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess:
    promtool = require_executable("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def assert_promtool_accepts(scrape: Scrape) -> None:
    result = promtool_check_metrics(scrape.text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def defined_families() -> dict[str, str]:
    """Every metric family races.operations.metrics defines: {name: type}."""
    return {
        family.name: family.type
        for collector in (
            *(getattr(metrics, name) for name in dir(metrics) if name.isupper()),
            metrics._races_running_collector,
        )
        if hasattr(collector, "describe")
        for family in collector.describe()
    }


class LiveRace:
    """A started race, its contract events, and a relay core making frames on demand."""

    def __init__(self, race: Race, feed: EventFeed) -> None:
        self.race, self.feed = race, feed
        self.slug = race.slug
        self.core = RelayCore(frames_per_second=20)
        self.second = 0

    @classmethod
    async def start(cls, athletes: int = 4) -> "LiveRace":
        # 1000x: a tick 30 race-seconds after the start was due 30 ms after it.
        race = await sync_to_async(started_race)(athletes=athletes, time_compression=1000.0)
        return cls(race, await sync_to_async(EventFeed)(race))

    async def frame(self, events: list[dict] | None = None) -> list[dict]:
        if events is None:
            self.second += 30
            events = self.feed.starts() if self.second == 30 else self.feed.tick(self.second)
        self.core.ingest(self.slug, events)
        await self.core.flush(self.core.feeds[self.slug])
        return events


async def connect(path: str, **kwargs) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(sockets, path, **kwargs)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def receive(communicator: WebsocketCommunicator) -> dict:
    return json.loads(await communicator.receive_from(timeout=5))


async def until(condition, what: str, within_s: float = 10.0):
    return await async_wait_for(condition, within_s, what)


# ---- the page ---------------------------------------------------------------------------


async def test_web_metrics_parse_and_pass_promtool():
    scrape = await scrape_web()
    for name, kind in defined_families().items():
        assert name in scrape.families, f"{name} missing from /metrics"
        assert scrape.families[name].type == kind
        assert scrape.families[name].documentation, f"{name} has no HELP text"
    # django-prometheus (HTTP, database) and the process collector are there too.
    assert "django_http_requests_total_by_method" in scrape.families
    assert "process_resident_memory_bytes" in scrape.families
    assert_promtool_accepts(scrape)


def test_the_readme_documents_every_metric():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Observability", 1)[1].split("\n## ", 1)[0]
    for name, kind in defined_families().items():
        exported = f"{name}_total" if kind == "counter" else name
        assert f"| `{exported}` |" in section, f"{exported} is not in README's metrics table"


def test_promtool_catches_a_badly_named_metric():
    # The check above can fail: a counter without `_total`, in milliseconds.
    text = "# HELP x_latency_milliseconds x\n# TYPE x_latency_milliseconds counter\n"
    text += "x_latency_milliseconds 1\n"
    result = promtool_check_metrics(text)
    assert result.returncode != 0
    assert 'should have "_total" suffix' in result.stderr
    assert 'use base unit "seconds"' in result.stderr


def test_races_running_is_read_from_the_database():
    running = make_race(unique_name("Running"))
    Race.objects.filter(pk=running.pk).update(status=Race.Status.RUNNING)
    make_race(unique_name("Draft"))
    scrape = async_to_sync(scrape_web)()
    assert scrape("raceweb_races_running") == 1
    assert scrape.labels_of("raceweb_race_running") == [{"race": running.slug}]


# ---- spectators -------------------------------------------------------------------------


async def test_a_spectator_moves_the_connection_gauge_and_a_running_race_the_sent_counters():
    live = await LiveRace.start(athletes=4)
    before = await scrape_web()
    spectator = await connect(f"/ws/races/{live.slug}/")
    assert (await receive(spectator))["type"] == "snapshot"

    connected = await scrape_web()
    assert moved(before, connected, "raceweb_websocket_connections", endpoint="race") == 1
    assert moved(before, connected, "raceweb_websocket_connects_total", endpoint="race") == 1
    assert moved(before, connected, "raceweb_snapshot_size_bytes_count") == 1
    assert moved(before, connected, "raceweb_snapshot_size_bytes_sum") > 100
    assert moved(before, connected, "raceweb_frames_sent_total", endpoint="race") == 1

    positions_on_the_wire = positions_in = 0
    for _ in range(3):
        positions_in += len(await live.frame())
        update = await receive(spectator)
        assert update["type"] == "update"
        positions_on_the_wire += len(update["athletes"])
    running = await scrape_web()
    assert moved(connected, running, "raceweb_frames_sent_total", endpoint="race") == 3
    assert (
        moved(connected, running, "raceweb_positions_sent_total", endpoint="race")
        == positions_on_the_wire
    )
    latency = {"race": live.slug}
    # Every position of the three frames was timed, from its due time to the frame going out.
    assert running("raceweb_position_delivery_seconds_count", **latency) == positions_in == 12
    assert 0 < running("raceweb_position_delivery_seconds_sum", **latency) < 12 * 10
    assert running("raceweb_position_delivery_seconds_bucket", le="+Inf", **latency) == 12
    # The relay core in this process counted the same positions.
    assert running("raceweb_relay_positions_consumed_total", **latency) == 12
    assert running("raceweb_relay_positions_stored_total", **latency) == 12
    assert running("raceweb_relay_lag_seconds", **latency) > 0
    assert_promtool_accepts(running)

    await spectator.disconnect()

    async def gauge_back() -> bool:
        after = await scrape_web()
        return after("raceweb_websocket_connections", endpoint="race") == before(
            "raceweb_websocket_connections", endpoint="race"
        )

    await until(gauge_back, "the connection gauge to drop after the disconnect")
    left = await scrape_web()
    assert moved(before, left, "raceweb_websocket_disconnects_total", endpoint="race") == 1


async def test_duplicates_are_counted_not_stored():
    live = await LiveRace.start(athletes=4)
    starts = await live.frame()
    await live.frame(starts)  # the same events again, as after a relay crash
    scrape = await scrape_web()
    race = {"race": live.slug}
    assert scrape("raceweb_relay_positions_consumed_total", **race) == 8
    assert scrape("raceweb_relay_positions_deduplicated_total", **race) == 4
    assert scrape("raceweb_relay_positions_stored_total", **race) == 4
    assert await sync_to_async(Position.objects.filter(race=live.race).count)() == 4


async def test_refused_and_failed_sockets_count_as_errors_by_reason():
    live = await LiveRace.start(athletes=2)
    before = await scrape_web()

    unknown = await connect("/ws/races/no-such-race/")
    assert (await unknown.receive_output(timeout=5))["code"] == 4404
    garbage = await connect(f"/ws/races/{live.slug}/")
    await receive(garbage)
    await garbage.send_to(text_data="{not json")
    assert (await garbage.receive_output(timeout=5))["code"] == 4400
    foreign = WebsocketCommunicator(
        sockets, f"/ws/races/{live.slug}/", headers=[(b"origin", b"https://evil.example")]
    )
    assert (await foreign.connect(timeout=5))[0] is False

    after = await scrape_web()

    def errors(reason: str) -> float:
        return moved(
            before, after, "raceweb_websocket_errors_total", endpoint="race", reason=reason
        )

    assert (errors("unknown_race"), errors("bad_message"), errors("origin")) == (1, 1, 1)
    # The refused origin never counted as a connection; the other two did, and closed.
    assert moved(before, after, "raceweb_websocket_connects_total", endpoint="race") == 2
    assert moved(before, after, "raceweb_websocket_disconnects_total", endpoint="race") == 2
    assert moved(before, after, "raceweb_websocket_connections", endpoint="race") == 0


async def test_an_unexpected_server_error_counts_as_other(monkeypatch):
    async def broken(slug: str):
        raise RuntimeError("the database went away mid-handshake")

    monkeypatch.setattr(race_hub, "race_hub", broken)
    before = await scrape_web()
    socket = await connect("/ws/races/any-race/")
    with pytest.raises(RuntimeError, match="database went away"):
        await socket.receive_output(timeout=5)
    after = await scrape_web()
    labels = {"endpoint": "race", "reason": "other"}
    assert moved(before, after, "raceweb_websocket_errors_total", **labels) == 1
    assert moved(before, after, "raceweb_websocket_connections", endpoint="race") == 0


async def test_seed_endpoint_counts_one_position_per_message():
    live = await LiveRace.start(athletes=3)
    before = await scrape_web()
    listener = await connect(f"/ws?race={wire.exchange_name(live.slug)}")
    # Accepted first, subscribed after: events before that are not this listener's.
    seed_hub = await hubs.seed_hub()
    await until(lambda: seed_hub.spectators, "the listener to join the seed hub")
    events = await live.frame()
    for _ in events:
        await receive(listener)
    after = await scrape_web()
    assert moved(before, after, "raceweb_websocket_connections", endpoint="seed") == 1
    assert moved(before, after, "raceweb_frames_sent_total", endpoint="seed") == len(events)
    assert moved(before, after, "raceweb_positions_sent_total", endpoint="seed") == len(events)
    await listener.disconnect()


# ---- the recording helpers ----------------------------------------------------------------


def test_an_unknown_endpoint_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown WebSocket endpoint"):
        metrics.websocket_connected("ws/races/vtr")


def test_unknown_error_reasons_are_folded_into_other():
    before = REGISTRY.get_sample_value(
        "raceweb_websocket_errors_total", {"endpoint": "seed", "reason": "other"}
    )
    metrics.websocket_error("seed", "a reason nobody listed")
    after = REGISTRY.get_sample_value(
        "raceweb_websocket_errors_total", {"endpoint": "seed", "reason": "other"}
    )
    assert after - (before or 0) == 1
    assert (
        REGISTRY.get_sample_value(
            "raceweb_websocket_errors_total",
            {"endpoint": "seed", "reason": "a reason nobody listed"},
        )
        is None
    )


def test_delivery_latency_is_measured_from_the_due_wall_time():
    # A race started at t=1000 with 20x compression: race-clock t=1200 was due at t=1010.
    assert metrics.due_wall_time(started_at=1000.0, event_time=1200.0, time_compression=20.0) == (
        1010.0
    )
    # One tick of four athletes shares a due time; a later tick has its own.
    due = metrics.due_counts([1200.0] * 4 + [1206.0], started_at=1000.0, time_compression=20.0)
    assert due == [(1010.0, 4), (1010.3, 1)]
    race = "latency-race"
    metrics.observe_delivery(race, due, sent_at=1010.4)
    count = REGISTRY.get_sample_value("raceweb_position_delivery_seconds_count", {"race": race})
    under_half_second = REGISTRY.get_sample_value(
        "raceweb_position_delivery_seconds_bucket", {"race": race, "le": "0.5"}
    )
    under_quarter = REGISTRY.get_sample_value(
        "raceweb_position_delivery_seconds_bucket", {"race": race, "le": "0.25"}
    )
    assert (count, under_half_second, under_quarter) == (5, 5, 1)
    metrics.forget_race(race)
    assert (
        REGISTRY.get_sample_value("raceweb_position_delivery_seconds_count", {"race": race}) is None
    )


def test_race_series_stay_bounded(monkeypatch):
    monkeypatch.setattr(metrics.race_series, "limit", 3)
    races = [f"bounded-{n}" for n in range(5)]
    for race in races:
        metrics.relay_consumed(race, 2)
        metrics.observe_delivery(race, [(0.0, 1)], sent_at=0.1)

    def exported(race):
        return REGISTRY.get_sample_value("raceweb_relay_positions_consumed_total", {"race": race})

    assert [exported(race) for race in races] == [None, None, 2, 2, 2]
    assert (
        REGISTRY.get_sample_value("raceweb_position_delivery_seconds_count", {"race": races[0]})
        is None
    )
    for race in races:
        metrics.forget_race(race)
    assert all(exported(race) is None for race in races)


def test_tick_overrun_counts_only_late_ticks():
    before = REGISTRY.get_sample_value("raceweb_worker_tick_overruns_total")
    late_before = REGISTRY.get_sample_value("raceweb_worker_tick_overrun_seconds_total")
    metrics.tick_finished(duration_s=0.05, budget_s=0.25)
    metrics.tick_finished(duration_s=0.40, budget_s=0.25)
    assert REGISTRY.get_sample_value("raceweb_worker_tick_overruns_total") - before == 1
    late = REGISTRY.get_sample_value("raceweb_worker_tick_overrun_seconds_total") - late_before
    assert late == pytest.approx(0.15)


def test_relay_and_worker_serve_metrics_on_their_own_port():
    server = start_metrics_server(port=0, addr="127.0.0.1")
    try:
        metrics.relay_consumed("served-race", 7)
        metrics.positions_published("served-race", 7)
        scrape = scrape_http(f"http://127.0.0.1:{server.server_port}/metrics")
        assert scrape("raceweb_relay_positions_consumed_total", race="served-race") == 7
        assert scrape("raceweb_worker_positions_published_total", race="served-race") == 7
        assert "raceweb_worker_publish_confirm_seconds" in scrape.families
        assert scrape("process_cpu_seconds_total") > 0
        assert_promtool_accepts(scrape)
    finally:
        server.shutdown()
        server.server_close()
        metrics.forget_race("served-race")


# ---- the real processes -------------------------------------------------------------------


@pytest.mark.rabbitmq
async def test_relay_process_and_daphne_export_what_a_running_race_does(rabbitmq_url, tmp_path):
    """`manage.py relay` serves /metrics on METRICS_PORT; daphne on /metrics. Positions
    published into the race's fanout show up in both, and agree."""
    relay_port = free_port()
    # Our own control fanout: relays of other test runs on the shared broker never hear
    # our race start (and never take its queue).
    control = f"{wire.CONTROL_EXCHANGE}.test-{uuid.uuid4().hex[:8]}"
    processes = Processes(
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
        await async_wait_for(lambda: spectator.of_type("snapshot"), 15, "the snapshot")

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

        relay = await asyncio.to_thread(lambda: wait_for(relay_has_all, 30, "relay to store"))
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

        daphne = await asyncio.to_thread(lambda: wait_for(web_has_all, 30, "web to deliver"))
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
        await asyncio.to_thread(processes.stop)
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
    processes = Processes(
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
        processes.worker()
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

        worker = wait_for(published_some, 30, "the worker to publish five ticks")
        # One batch per wake-up (a late one catches up several ticks), each confirmed.
        batches = worker("raceweb_worker_tick_seconds_count")
        assert batches >= 2
        assert worker("raceweb_worker_publish_confirm_seconds_count") >= batches
        assert worker("raceweb_worker_publish_confirm_seconds_sum") > 0
        assert worker("process_resident_memory_bytes") > 0
        assert_promtool_accepts(worker)
    finally:  # stopping the worker ends the race's publishing; its rows go with the test
        processes.stop()
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


def test_a_taken_metrics_port_does_not_stop_the_process(caplog):
    first = start_metrics_server(port=0, addr="127.0.0.1")
    try:
        assert start_metrics_server(port=first.server_port, addr="127.0.0.1") is None
        assert "no /metrics: cannot listen" in caplog.text
    finally:
        first.shutdown()
        first.server_close()
