"""Reading /metrics as a scraper does, for the metrics tests: parsed with
prometheus_client's parser and checked with `promtool check metrics`."""

import subprocess
import urllib.request

from channels.testing import HttpCommunicator
from prometheus_client.parser import text_string_to_metric_families

from races.operations import metrics, races_running
from raceweb.asgi import django_asgi_app
from tests.conftest import require_executable


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
    """Every metric family races.operations defines (metrics, races_running): {name: type}."""
    return {
        family.name: family.type
        for collector in (
            *(getattr(metrics, name) for name in dir(metrics) if name.isupper()),
            races_running._races_running_collector,
        )
        if hasattr(collector, "describe")
        for family in collector.describe()
    }
