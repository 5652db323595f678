"""The monitoring configuration in deploy/, proven offline: Prometheus accepts the scrape
config and the rules, every alert fires and stays quiet in its unit tests, the scrape
targets are the compose stack's services, and every PromQL expression of the alerts and
the Grafana dashboard parses and names a metric that something really exports.

Where metric names come from:
- ours, django-prometheus's and prometheus_client's process_/python_ collectors: read
  from this process's /metrics registry, so a renamed metric breaks the test;
- rabbitmq_*: external, from RabbitMQ's rabbitmq_prometheus plugin; checked against a
  private RabbitMQ node with the plugin enabled (the installed 3.10; compose runs 4.1);
- `up`: written by Prometheus itself for every scrape.
"""

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import raceweb.asgi  # noqa: F401  (registers the web-only collectors, as daphne does)
from harness.ports import free_port
from harness.rabbitmq_node import PrivateRabbitMQ
from harness.waiting import wait_until
from tests.conftest import require_executable, require_rabbitmq_server

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

# rabbitmq_prometheus names the alerts and dashboards use (external: RabbitMQ exports them).
RABBITMQ_METRICS = {
    "/metrics": {
        "rabbitmq_connections",
        "rabbitmq_consumers",
        "rabbitmq_global_messages_delivered_total",
        "rabbitmq_global_messages_received_total",
        "rabbitmq_process_resident_memory_bytes",
    },
    "/metrics/detailed?family=queue_coarse_metrics": {"rabbitmq_detailed_queue_messages_ready"},
}
PROMETHEUS_SYNTHETIC = {"up"}
# Grafana's variables, replaced by a value of the same kind before parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def promtool(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    executable = require_executable("promtool")
    return subprocess.run(
        [executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def load(path: Path):
    return yaml.safe_load(path.read_text())


# --- promtool -------------------------------------------------------------------------


def test_prometheus_config_is_valid_and_finds_the_rules():
    result = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    rules = len([r for g in load(PROMETHEUS / "alerts.yml")["groups"] for r in g["rules"]])
    assert f"SUCCESS: {rules} rules found" in result.stdout


def test_alert_rules_are_valid():
    result = promtool("check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass():
    result = promtool("test", "rules", PROMETHEUS / "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    alerts = {r["alert"] for g in load(PROMETHEUS / "alerts.yml")["groups"] for r in g["rules"]}
    firing, quiet = set(), set()
    for case in load(PROMETHEUS / "alerts_test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alerts == firing, f"alerts without a firing case: {alerts - firing}"
    assert alerts == quiet, f"alerts without a quiet case: {alerts - quiet}"


def test_the_unit_tests_catch_a_changed_threshold(tmp_path):
    # The latency alert loosened from 500 ms to 5 s: its firing case must now fail.
    for name in ("alerts.yml", "alerts_test.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    rules = (tmp_path / "alerts.yml").read_text()
    assert ") > 0.5\n" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(") > 0.5\n", ") > 5\n"))
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "RaceWebDeliveryLatencyHigh" in result.stdout + result.stderr


def test_promtool_refuses_a_broken_rule(tmp_path):
    broken = tmp_path / "alerts.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: rate(up[5m]\n"
    )
    result = promtool("check", "rules", broken)
    assert result.returncode != 0


# --- the compose stack ------------------------------------------------------------------


def scrape_targets() -> dict[str, tuple[str, int, str]]:
    """{job: (host, port, metrics path)} of the Prometheus config."""
    targets = {}
    for job in load(PROMETHEUS / "prometheus.yml")["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets[job["job_name"]] = (host, int(port), path)
        for dns in job.get("dns_sd_configs", []):
            for name in dns["names"]:
                targets[job["job_name"]] = (name, int(dns["port"]), path)
    return targets


def environment(service: str) -> dict:
    return COMPOSE["services"][service]["environment"]


def test_scrape_targets_are_the_compose_services_on_their_metrics_ports():
    targets = scrape_targets()
    services = COMPOSE["services"]
    assert {"web", "relay", "worker", "rabbitmq", "rabbitmq-queues"} <= set(targets)
    web = targets["web"]
    assert web[0] == "web" and str(web[1]) in services["web"]["command"]
    # Django answers only to ALLOWED_HOSTS: the scrape's Host header must be one.
    assert "web" in environment("web")["ALLOWED_HOSTS"].split(",")
    for job in ("relay", "worker"):
        host, port, path = targets[job]
        assert host == job and path == "/metrics"
        assert port == int(environment(job)["METRICS_PORT"])
    for job in ("rabbitmq", "rabbitmq-queues"):
        assert targets[job][:2] == ("rabbitmq", 15692)
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_prometheus" in plugins
    assert any("enabled_plugins" in volume for volume in services["rabbitmq"]["volumes"])


def mounts(service: str) -> dict[str, str]:
    """{source path relative to the repository: container path} of a compose service."""
    pairs = (volume.split(":")[:2] for volume in COMPOSE["services"][service]["volumes"])
    return {source.removeprefix("./"): target for source, target in pairs}


def test_prometheus_and_grafana_read_the_files_from_deploy():
    prometheus = mounts("prometheus")
    config = Path(prometheus["deploy/prometheus/prometheus.yml"])
    for rule_file in load(PROMETHEUS / "prometheus.yml")["rule_files"]:
        # Relative rule files resolve next to the config file, in the container as here.
        assert (PROMETHEUS / rule_file).exists()
        assert prometheus[f"deploy/prometheus/{rule_file}"] == str(config.parent / rule_file)

    grafana = mounts("grafana")
    assert grafana["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load(GRAFANA / "provisioning" / "dashboards" / "raceweb.yml")["providers"][0]
    assert provider["options"]["path"] == grafana["deploy/grafana/dashboards"]
    datasource = load(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    [prometheus_source] = datasource["datasources"]
    assert prometheus_source["url"] == "http://prometheus:9090"
    assert "prometheus" in COMPOSE["services"]


# --- dashboards -------------------------------------------------------------------------


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def datasource_uid() -> str:
    datasource = load(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    return datasource["datasources"][0]["uid"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_panels_use_the_provisioned_datasource(path):
    dashboard = json.loads(path.read_text())
    uid = datasource_uid()
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]


def test_the_dashboard_shows_what_ops_need():
    dashboard = json.loads((GRAFANA / "dashboards" / "raceweb.json").read_text())
    expressions = {
        panel["title"]: " ".join(t["expr"] for t in panel["targets"])
        for panel in panels(dashboard)
        if panel["type"] != "row"
    }
    wanted = {
        "WebSocket connections by endpoint": "raceweb_websocket_connections",
        "Messages / s": "raceweb_frames_sent_total",
        "Delivery latency by race": "by (race, le)",
        "Positions / s: published vs consumed vs stored": "raceweb_relay_positions_consumed",
        "CPU per process": "process_cpu_seconds_total",
        "Memory per process": "process_resident_memory_bytes",
        "HTTP p95 latency by view": "histogram_quantile(0.95",
        "HTTP responses by status": "by (status)",
    }
    for title, fragment in wanted.items():
        assert fragment in expressions.get(title, ""), title
    assert (
        "raceweb_worker_positions_published_total"
        in expressions["Positions / s: published vs consumed vs stored"]
    )


# --- PromQL: parses, and names only metrics that exist ----------------------------------


def dashboard_expressions() -> list[str]:
    expressions = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            expressions += [target["expr"] for target in panel.get("targets", [])]
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            # Grafana's label_values(metric, label): the metric part is PromQL.
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query or "")
            if match:
                expressions.append(match.group(1))
    return expressions


def alert_expressions() -> list[str]:
    return [r["expr"] for g in load(PROMETHEUS / "alerts.yml")["groups"] for r in g["rules"]]


def metric_names(expression: str) -> set[str]:
    """Every metric an expression selects; raises ValueError when it does not parse."""
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    names = set()

    def visit(node) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expression), visit)
    return names


def series_names(families) -> set[str]:
    """The series names a scrape holds: its samples' names, and for a labelled family
    that has no series yet, the names its type gives it."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_count", "_sum"],
        "summary": ["", "_count", "_sum"],
        "info": ["_info"],
    }
    names = set()
    for family in families:
        if family.samples:
            names |= {sample.name for sample in family.samples}
        else:
            names |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
    return names


@pytest.fixture(scope="module")
def exported_names() -> set[str]:
    """Every series name web, relay and worker processes export (same registry here)."""
    text = generate_latest(REGISTRY).decode()
    names = series_names(text_string_to_metric_families(text))
    # Read from the database at scrape time; described even when the database is away.
    names |= {"raceweb_races_running", "raceweb_race_running"}
    return names


def test_exported_names_come_from_the_code(exported_names):
    # The source of truth is the registry: our metrics and django-prometheus's are there.
    assert {
        "raceweb_position_delivery_seconds_bucket",
        "raceweb_worker_positions_published_total",
        "django_http_responses_total_by_status_view_method_total",
        "process_cpu_seconds_total",
    } <= exported_names


@pytest.mark.parametrize(
    "expression", dashboard_expressions() + alert_expressions(), ids=lambda e: e[:60]
)
def test_every_expression_parses_and_names_exported_metrics(expression, exported_names):
    external = set().union(*RABBITMQ_METRICS.values(), PROMETHEUS_SYNTHETIC)
    names = metric_names(expression)
    assert names, "an expression that selects no metric"
    unknown = names - exported_names - external
    assert not unknown, f"not exported by anything: {unknown}"


def test_the_checks_catch_a_typo_and_a_syntax_error(exported_names):
    assert metric_names("rate(raceweb_frames_send_total[5m])") - exported_names == {
        "raceweb_frames_send_total"
    }
    with pytest.raises(ValueError):
        metric_names("sum(rate(raceweb_frames_sent_total[5m])")


def test_every_raceweb_metric_is_on_the_dashboard_or_in_an_alert(exported_names):
    used = set().union(*(metric_names(e) for e in dashboard_expressions() + alert_expressions()))
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    ours = {name for name in exported_names if name.startswith("raceweb_")}
    unseen = {
        name
        for name in ours
        if name not in used and re.sub(r"_(bucket|count|sum)$", "", name) not in families
    }
    assert not unseen, f"exported but on no panel and in no alert: {sorted(unseen)}"


def test_every_external_metric_is_used():
    used = set().union(*(metric_names(e) for e in dashboard_expressions() + alert_expressions()))
    external = set().union(*RABBITMQ_METRICS.values())
    assert external <= used, f"listed but unused: {external - used}"


class RabbitMQWithPrometheus(PrivateRabbitMQ):
    """A private node with the rabbitmq_prometheus plugin on a free port."""

    def __init__(self) -> None:
        self.prometheus_port = free_port()
        super().__init__(tag="prom")

    def _write_config(self) -> None:
        super()._write_config()
        (self.base / "rabbitmq.config").write_text(
            "[{rabbit, [\n"
            f'  {{tcp_listeners, [{{"127.0.0.1", {self.amqp_port}}}]}},\n'
            "  {disk_free_limit, 1000000}\n"
            "]},\n"
            " {rabbitmq_prometheus, [{tcp_config, [\n"
            f'  {{port, {self.prometheus_port}}}, {{ip, "127.0.0.1"}}\n'
            "]}]}].\n"
        )
        (self.base / "enabled_plugins").write_text("[rabbitmq_prometheus].\n")

    def scrape(self, path: str, timeout: float = 30.0) -> str:
        url = f"http://127.0.0.1:{self.prometheus_port}{path}"

        def page() -> str | None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.read().decode()
            except OSError:
                return None

        return wait_until(page, timeout, f"the plugin to serve {path}", poll_s=0.2)


def test_rabbitmq_metric_names_exist_in_the_real_plugin():
    require_rabbitmq_server()
    with RabbitMQWithPrometheus() as node:
        for path, wanted in RABBITMQ_METRICS.items():
            families = text_string_to_metric_families(node.scrape(path))
            exported = series_names(families)
            assert wanted <= exported, f"{path} lacks {wanted - exported}"
