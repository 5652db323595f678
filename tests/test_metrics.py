"""Prometheus metrics as a scraper sees them: every process's /metrics parses with
prometheus_client's parser, passes `promtool check metrics`, and its values move when
spectators connect and leave and when positions flow."""

import subprocess
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from races import metrics
from races.metrics_server import start_metrics_server
from races.models import Race
from raceweb.asgi import application
from tests.conftest import require_executable
from tests.factories import make_race

pytestmark = pytest.mark.django_db(transaction=True)


def parse(text: str) -> dict[str, dict]:
    """{family name: {"type": ..., "samples": {(sample name, sorted labels): value}}}"""
    return {
        family.name: {
            "type": family.type,
            "help": family.documentation,
            "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples},
        }
        for family in text_string_to_metric_families(text)
    }


def value(families: dict, family: str, sample: str | None = None, **labels) -> float:
    """A sample's value, 0 when the series does not exist (yet)."""
    samples = families.get(family, {}).get("samples", {})
    return samples.get((sample or family, tuple(sorted(labels.items()))), 0.0)


async def scrape_web() -> str:
    communicator = HttpCommunicator(
        application, "GET", "/metrics", headers=[(b"host", b"localhost")]
    )
    response = await communicator.get_response(timeout=15)
    assert response["status"] == 200
    content_type = dict(response["headers"])[b"Content-Type"].decode()
    assert content_type.startswith("text/plain; version=")
    return response["body"].decode()


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess:
    promtool = require_executable("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def defined_families() -> dict[str, str]:
    """Every metric family races.metrics defines: {name: type}."""
    return {
        family.name: family.type
        for collector in (
            *(getattr(metrics, name) for name in dir(metrics) if name.isupper()),
            metrics._races_running_collector,
        )
        if hasattr(collector, "describe")
        for family in collector.describe()
    }


async def test_web_metrics_parse_and_pass_promtool():
    text = await scrape_web()
    families = parse(text)
    for name, kind in defined_families().items():
        assert name in families, f"{name} missing from /metrics"
        assert families[name]["type"] == kind
        assert families[name]["help"], f"{name} has no HELP text"
    # django-prometheus (HTTP, database) and the process collector are there too.
    assert "django_http_requests_total_by_method" in families
    assert "process_resident_memory_bytes" in families
    result = promtool_check_metrics(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_promtool_catches_a_badly_named_metric():
    # The check above can fail: a counter without `_total`, in milliseconds.
    text = "# HELP x_latency_milliseconds x\n# TYPE x_latency_milliseconds counter\n"
    text += "x_latency_milliseconds 1\n"
    result = promtool_check_metrics(text)
    assert result.returncode != 0
    assert 'should have "_total" suffix' in result.stderr
    assert 'use base unit "seconds"' in result.stderr


def test_races_running_is_read_from_the_database():
    running = make_race("Running metrics race")
    Race.objects.filter(pk=running.pk).update(status=Race.Status.RUNNING)
    make_race("Draft metrics race")
    families = parse(async_to_sync(scrape_web)())
    assert value(families, "raceweb_races_running") == 1
    assert value(families, "raceweb_race_running", race=running.slug) == 1
    races = {labels for (_, labels) in families["raceweb_race_running"]["samples"]}
    assert races == {(("race", running.slug),)}


async def test_connection_helpers_move_the_gauge_and_counters():
    before = parse(await scrape_web())
    metrics.websocket_connected("seed")
    metrics.websocket_connected("seed")
    metrics.websocket_disconnected("seed")
    metrics.websocket_error("seed", "not-a-known-reason")
    after = parse(await scrape_web())

    def delta(family, sample=None, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    assert delta("raceweb_websocket_connections", endpoint="seed") == 1
    assert (
        delta("raceweb_websocket_connects", "raceweb_websocket_connects_total", endpoint="seed")
        == 2
    )
    assert (
        delta(
            "raceweb_websocket_disconnects", "raceweb_websocket_disconnects_total", endpoint="seed"
        )
        == 1
    )
    # Unknown reasons are folded into "other": the label stays bounded.
    assert (
        delta(
            "raceweb_websocket_errors",
            "raceweb_websocket_errors_total",
            endpoint="seed",
            reason="other",
        )
        == 1
    )
    metrics.websocket_disconnected("seed")


def test_an_unknown_endpoint_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown WebSocket endpoint"):
        metrics.websocket_connected("ws/races/vtr")


def test_delivery_latency_is_measured_from_the_due_wall_time():
    # A race started at t=1000 with 20x compression: race-clock t=1200 was due at t=1010.
    due = metrics.due_wall_time(started_at=1000.0, event_time=1200.0, time_compression=20.0)
    assert due == 1010.0
    race = "latency-race"
    metrics.observe_delivery(race, [due, due + 0.3], sent_at=1010.4)
    count = REGISTRY.get_sample_value("raceweb_position_delivery_seconds_count", {"race": race})
    under_half_second = REGISTRY.get_sample_value(
        "raceweb_position_delivery_seconds_bucket", {"race": race, "le": "0.5"}
    )
    under_quarter = REGISTRY.get_sample_value(
        "raceweb_position_delivery_seconds_bucket", {"race": race, "le": "0.25"}
    )
    assert (count, under_half_second, under_quarter) == (2, 2, 1)
    metrics.forget_race(race)
    assert (
        REGISTRY.get_sample_value("raceweb_position_delivery_seconds_count", {"race": race}) is None
    )


def test_race_series_stay_bounded(monkeypatch):
    monkeypatch.setattr(metrics.race_series, "limit", 3)
    races = [f"bounded-{n}" for n in range(5)]
    for race in races:
        metrics.relay_consumed(race, 2)
        metrics.observe_delivery(race, [0.0], sent_at=0.1)

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
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        families = parse(text)
        assert (
            value(
                families,
                "raceweb_relay_positions_consumed",
                "raceweb_relay_positions_consumed_total",
                race="served-race",
            )
            == 7
        )
        assert "raceweb_worker_publish_confirm_seconds" in families
        assert "process_cpu_seconds_total" in {
            name for family in families.values() for (name, _) in family["samples"]
        }
        result = promtool_check_metrics(text)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.shutdown()
        server.server_close()
        metrics.forget_race("served-race")
