"""Prometheus metrics as a scraper sees them: the web's /metrics parses with
prometheus_client's parser and passes `promtool check metrics`, every metric is in README,
and the recording helpers count what they should.

Spectator metrics: test_metrics_sockets.py; the relay, daphne and Celery worker processes:
test_metrics_processes.py.
"""

from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from prometheus_client import REGISTRY

from races.models import Race
from races.operations import metrics
from races.operations.metrics_server import start_metrics_server
from tests.factories import make_race, unique_name
from tests.metrics_support import (
    assert_promtool_accepts,
    defined_families,
    promtool_check_metrics,
    scrape_http,
    scrape_web,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


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


def test_a_taken_metrics_port_does_not_stop_the_process(caplog):
    first = start_metrics_server(port=0, addr="127.0.0.1")
    try:
        assert start_metrics_server(port=first.server_port, addr="127.0.0.1") is None
        assert "no /metrics: cannot listen" in caplog.text
    finally:
        first.shutdown()
        first.server_close()
