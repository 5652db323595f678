"""The JSON API's OpenAPI description: served, complete, browsable, and fuzzed.

schemathesis generates requests from `/api/openapi.json` (random slugs, bibs, `at`,
`since_frame`...) against the real Django app in process, over a race that has stored
positions; no answer may be a server error.
"""

import pytest
import schemathesis
from asgiref.sync import async_to_sync
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from races.relay.core import RelayCore
from tests.factories import EventFeed, started_race

pytestmark = pytest.mark.django_db(transaction=True)

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@pytest.fixture
def race_with_history():
    race = started_race(athletes=3)
    feed = EventFeed(race)

    async def store():
        core = RelayCore(frames_per_second=50)
        core.ingest(race.slug, feed.starts() + feed.tick(60) + feed.tick(120))
        await core.flush(core.feeds[race.slug])

    async_to_sync(store)()
    return race


def test_the_schema_lists_every_json_endpoint(client):
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    assert {
        "/api/races/", "/api/races/{slug}/", "/api/races/{slug}/course.geojson",
        "/api/races/{slug}/leaderboard", "/api/races/{slug}/positions",
        "/api/races/{slug}/athletes/{bib}/track", "/api/races/{slug}/athletes/{bib}/track.gpx",
        "/api/races/{slug}/results", "/api/races/{slug}/results.csv",
    } <= paths  # fmt: skip
    at = document["paths"]["/api/races/{slug}/leaderboard"]["get"]["parameters"]
    assert any(p["name"] == "at" and p["in"] == "query" for p in at)
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.content
    assert b"cdn." not in docs.content  # Swagger UI from our static files


def test_a_known_race_answers_its_documented_endpoints(client, race_with_history):
    slug = race_with_history.slug
    board = client.get(f"/api/races/{slug}/leaderboard", {"at": "90"})
    assert board.status_code == 200 and len(board.json()["athletes"]) == 3
    assert client.get(f"/api/races/{slug}/positions", {"since_frame": "x"}).status_code == 400


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_generated_request_gets_a_server_error(case, race_with_history):
    # Half the generated slugs are swapped for a race with history, so the fuzzed query
    # values and bibs reach the replay, results and export code, not only the 404.
    slug = (case.path_parameters or {}).get("slug")
    if slug is not None and len(slug) % 2 == 0:
        case.path_parameters["slug"] = race_with_history.slug
    case.call_and_validate(checks=[not_a_server_error])
