"""Races on the real RabbitMQ with real Celery workers started as subprocesses.

Each test gets its own Celery queue and race slug, listens on a queue bound to the
race's fanout ``race-<slug>`` and polls for what it expects, with deadlines.
"""

import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from django.utils import timezone
from kombu import Connection, Consumer, Exchange, Queue

from harness.stack import RaceWebProcesses
from harness.waiting import wait_until
from races.models import Race
from races.organizer import lifecycle
from races.simulation import tasks
from races.simulation.driver import simulation_for
from simulator.clock import race_seconds, tick_at
from tests.conftest import raceweb_processes
from tests.factories import make_race

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

CONTRACT_FIELDS = {
    "athlete", "gender", "race", "location", "elevation", "time", "event",
    "bib", "athlete_id", "seq", "distance_m", "speed_mps",
}  # fmt: skip


class Worker:
    """A Celery worker (the harness's, one pool process) and its log."""

    def __init__(self, processes: RaceWebProcesses, name: str) -> None:
        self.processes, self.name = processes, name
        processes.worker(name, concurrency=1, heartbeat=False)

    def text(self) -> str:
        return self.processes.log(self.name)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a crashed machine would."""
        self.processes.kill(self.name)


class Listener:
    """A private queue bound to a race's fanout; collects every event that arrives."""

    def __init__(self, amqp_url: str, exchange_name: str) -> None:
        self.connection = Connection(amqp_url)
        self.exchange = Exchange(exchange_name, type="fanout", durable=True, auto_delete=False)
        queue = Queue(f"test.{exchange_name}", self.exchange, exclusive=True, auto_delete=True)
        self.events: list[dict] = []
        self.consumer = Consumer(
            self.connection, [queue], callbacks=[self._on_message], accept=["json"]
        )
        self.consumer.consume()

    def _on_message(self, body, message) -> None:
        self.events.append(body)
        message.ack()

    def until(self, condition: Callable[[list[dict]], object], seconds: float, what: str):
        def check():
            self.drain(quiet_s=0.05)
            return condition(self.events)

        return wait_until(check, seconds, what)

    def drain(self, quiet_s: float = 0.3) -> None:
        """Take whatever the broker holds for us; ``quiet_s`` without a message ends it."""
        while True:
            try:
                self.connection.drain_events(timeout=quiet_s)
            except TimeoutError:
                return

    def close(self) -> None:
        channel = self.connection.default_channel
        channel.queue_delete(f"relay.{self.exchange.name}")  # declared by Start for the relay
        self.exchange(channel).delete()
        self.connection.close()


@pytest.fixture
def broker(rabbitmq_url, settings, tmp_path):
    """Settings pointing at RabbitMQ, a private Celery queue, and worker/listener factories."""
    queue = f"simulation-test-{uuid.uuid4().hex[:8]}"
    settings.AMQP_URL, settings.EMBEDDED, settings.SIMULATION_QUEUE = rabbitmq_url, False, queue
    processes = raceweb_processes(
        rabbitmq_url, tmp_path, SIMULATION_QUEUE=queue, SIMULATION_SEGMENT_SECONDS="2"
    )
    workers: list[Worker] = []
    listeners: list[Listener] = []

    class Broker:
        url = rabbitmq_url

        @staticmethod
        def worker() -> Worker:
            workers.append(Worker(processes, f"worker{len(workers)}"))
            return workers[-1]

        @staticmethod
        def listen(race: Race) -> Listener:
            listeners.append(Listener(rabbitmq_url, race.exchange_name))
            return listeners[-1]

        @staticmethod
        def purge() -> int:
            with Connection(rabbitmq_url) as conn:
                return conn.default_channel.queue_purge(queue) or 0

        @staticmethod
        def waiting() -> int:
            with Connection(rabbitmq_url) as conn:
                return conn.default_channel.queue_declare(queue, passive=True).message_count

    yield Broker
    for worker in workers:
        worker.kill()
    processes.stop_all()
    for listener in listeners:
        listener.close()
    with Connection(rabbitmq_url) as conn:
        conn.default_channel.queue_delete(queue)
        conn.default_channel.exchange_delete(queue)


def race_for(compression: float, tick_seconds: float = 5.0) -> Race:
    slug = f"celery-{uuid.uuid4().hex[:10]}"
    return make_race(
        name=slug, slug=slug, athletes=3, seed=2026,
        time_compression=compression, tick_seconds=tick_seconds,
    )  # fmt: skip


def tick_of(event: dict, race: Race) -> int:
    elapsed = (datetime.fromisoformat(event["time"]) - race.started_at).total_seconds()
    return round(elapsed / race.tick_seconds)


def clock_tick(race: Race) -> int:
    return tick_at(
        race_seconds(race.started_at, timezone.now(), race.time_compression), race.tick_seconds
    )


def running_ticks(events: list[dict], race: Race) -> list[int]:
    return [tick_of(e, race) for e in events if e["event"] == "running"]


def test_a_started_race_publishes_every_kind_of_event_in_the_contract(broker):
    """No relay runs here: the race's events are published, and the race stays running."""
    race = race_for(compression=1000.0, tick_seconds=10.0)  # 14 km in a few seconds
    listener = broker.listen(race)
    worker = broker.worker()
    race = lifecycle.start_race(race)

    def everyone_done(events):
        return sum(e["event"] in ("finish", "dnf") for e in events) == 3

    listener.until(everyone_done, 90, "finish or DNF of all three athletes")
    events = listener.events
    assert {"start", "running", "checkpoint", "finish"} <= {e["event"] for e in events}
    for e in events:
        assert CONTRACT_FIELDS <= set(e) and e["race"] == race.exchange_name
        assert set(e["location"]) == {"latitude", "longitude"} and e["time"].endswith("Z")
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert {e["checkpoint"] for e in checkpoints} == {"5 km", "10 km"}
    assert all(e["split_s"] > 0 for e in checkpoints)
    assert len({e["seq"] for e in events}) == len(events)
    assert worker.text().count(": continue") >= 1  # it ran as a chain of segments


def test_a_published_race_is_finished_by_the_relay_never_by_the_worker(broker, settings, tmp_path):
    race = race_for(compression=1000.0, tick_seconds=10.0)
    broker.listen(race)  # deletes the race's exchange and relay queue at the end
    worker = broker.worker()
    race = lifecycle.start_race(race)
    wait_until(lambda: ": complete" in worker.text(), 90, "the chain to publish its last tick")
    race.refresh_from_db()
    assert race.sim_tick == simulation_for(race).last_tick
    # No relay runs: the race stays running, and the watchdog does not simulate it again.
    assert race.status == Race.Status.RUNNING
    settings.SIMULATION_STALE_SECONDS = 0.0
    assert tasks.watchdog() == 0
    assert Race.objects.get(pk=race.pk).status == Race.Status.RUNNING

    control = f"raceweb.control.test-{uuid.uuid4().hex[:8]}"
    relay = raceweb_processes(broker.url, tmp_path, RELAY_CONTROL_EXCHANGE=control)
    try:
        relay.relay()  # takes the running race on and reads its queue: every event is there
        wait_until(
            lambda: Race.objects.get(pk=race.pk).status == Race.Status.FINISHED,
            30,
            "the relay to finish the race",
        )
    finally:
        relay.stop_all()
        with Connection(broker.url) as conn:
            conn.default_channel.exchange_delete(control)


def test_stop_ends_publication_within_two_ticks(broker):
    race = race_for(compression=20.0)  # a tick every 0.25 s
    listener = broker.listen(race)
    worker = broker.worker()
    race = lifecycle.start_race(race)
    listener.until(lambda ev: max(running_ticks(ev, race), default=0) >= 4, 60, "tick 4")

    lifecycle.stop_race(race)
    stop_tick = clock_tick(race)
    wait_until(lambda: ": stopped" in worker.text(), 20, "the segment to see the Stop")
    # Publisher confirms: all the segment published is in our queue by now.
    listener.drain()
    assert max(running_ticks(listener.events, race)) <= stop_tick + 2


def recorded_tick(race: Race) -> int:
    return Race.objects.get(pk=race.pk).sim_tick


def as_the_relay_sees_them(events: list[dict]) -> dict[int, list[dict]]:
    """Per athlete, dropping any event whose seq is not newer than the last one kept."""
    kept: dict[int, list[dict]] = {}
    for e in events:
        mine = kept.setdefault(e["athlete_id"], [])
        if not mine or e["seq"] > mine[-1]["seq"]:
            mine.append(e)
    return kept


def test_a_killed_worker_is_replaced_and_the_race_goes_on_from_its_clock(broker):
    race = race_for(compression=20.0)
    listener = broker.listen(race)
    first = broker.worker()
    race = lifecycle.start_race(race)
    wait_until(lambda: recorded_tick(race) >= 8, 60, "tick 8 published and recorded")

    first.kill()
    recorded = recorded_tick(race)
    listener.drain()
    seen = len(listener.events)
    broker.worker()
    resumed_at = clock_tick(race)
    listener.until(
        lambda ev: max(running_ticks(ev, race)) >= resumed_at + 8, 60, "8 ticks after restart"
    )
    # It goes on from the race clock: what it publishes is (within two ticks) what is due now,
    # not a replay of the missed stretch at race pace.
    listener.until(
        lambda ev: max(running_ticks(ev, race)) >= clock_tick(race) - 2, 30, "on the race clock"
    )
    lifecycle.stop_race(race)

    simulation = simulation_for(race)
    after = listener.events[seen:]
    assert not [e for e in after if e["event"] == "start"]  # never a run from zero
    # Everything the new worker published is past the last tick the old one recorded,
    assert min(simulation.tick_of_seq(e["seq"]) for e in after) > recorded
    # and the ticks it missed are published late, every one, none skipped (replay and
    # analysis need each position; the dead worker's ticks are not published twice).
    ticks = sorted(set(running_ticks(after, race)))
    assert ticks == list(range(recorded + 1, ticks[-1] + 1))
    assert ticks[-1] >= resumed_at + 8
    for events in as_the_relay_sees_them(listener.events).values():
        distances = [e["distance_m"] for e in events]
        assert distances == sorted(distances)


def test_the_watchdog_restarts_a_race_whose_chain_died(broker, settings):
    race = race_for(compression=20.0)
    listener = broker.listen(race)
    first = broker.worker()
    race = lifecycle.start_race(race)
    wait_until(lambda: recorded_tick(race) >= 4, 60, "tick 4 published and recorded")

    first.kill()
    wait_until(broker.waiting, 10, "the broker to requeue the killed worker's segment")
    broker.purge()  # the chain is now dead: no task left for this race
    recorded = recorded_tick(race)
    listener.drain()
    seen = len(listener.events)
    settings.SIMULATION_STALE_SECONDS = 1.0
    assert wait_until(tasks.watchdog, 10, "the watchdog to find the silent race") == 1
    broker.worker()
    restarted_at = clock_tick(race)
    listener.until(
        lambda ev: max(running_ticks(ev, race)) >= restarted_at + 4, 60, "ticks after restart"
    )
    listener.until(
        lambda ev: max(running_ticks(ev, race)) >= clock_tick(race) - 2, 30, "on the race clock"
    )
    lifecycle.stop_race(race)
    after = listener.events[seen:]
    assert not [e for e in after if e["event"] == "start"]
    assert min(simulation_for(race).tick_of_seq(e["seq"]) for e in after) > recorded
    # The ticks the dead chain never published come late, every one of them.
    ticks = sorted(set(running_ticks(after, race)))
    assert ticks == list(range(recorded + 1, ticks[-1] + 1))
