"""The spectator pages as HTML: what they show before any script runs."""

import json
import re

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from races.models import LiveAthlete, Race
from tests.factories import make_race

pytestmark = pytest.mark.django_db


def test_race_list_shows_running_races_first_and_hides_drafts(client):
    make_race("Finished Race", status=Race.Status.FINISHED)
    make_race("Running Race", status=Race.Status.RUNNING, athletes=7)
    make_race("Draft Race")
    make_race("Scheduled Race", status=Race.Status.SCHEDULED)
    html = client.get(reverse("race-list")).content.decode()
    names = re.findall(r'<h2><a href="[^"]+">([^<]+)</a></h2>', html)
    assert names == ["Running Race", "Scheduled Race", "Finished Race"]
    running = html[html.index("Running Race") :]
    assert re.search(r'data-field="athletes">7<', running)
    assert ">Live</span>" in running


def test_race_list_counts_athletes_running_and_finished(client):
    race = make_race("Running Race", status=Race.Status.RUNNING, athletes=5)
    statuses = ["running", "running", "finished", "dnf"]  # the fifth has not started
    for athlete, status in zip(race.athletes.order_by("pk"), statuses, strict=False):
        LiveAthlete.objects.create(
            athlete=athlete, race=race, seq=1, frame=1, state={"id": athlete.pk, "status": status}
        )
    html = client.get(reverse("race-list")).content.decode()
    assert "2 running · 1 finished · 1 DNF" in html
    assert 'data-bar="finished" style="width:20.0%"' in html
    assert 'data-bar="running" style="width:40.0%"' in html


def test_race_list_escapes_race_names(client):
    make_race("<script>alert(1)</script>", status=Race.Status.RUNNING)
    html = client.get(reverse("race-list")).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@override_settings(MAP_TILE_URL="https://tiles.example.org/{z}/{x}/{y}.png")
def test_race_page_passes_tiles_socket_and_course_to_the_script(client):
    race = make_race("VTR", athletes=3)
    response = client.get(race.get_absolute_url())
    assert response.status_code == 200
    match = re.search(
        r'<script id="race-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    config = json.loads(match.group(1))
    assert config["tile_url"] == "https://tiles.example.org/{z}/{x}/{y}.png"
    assert config["tile_attribution"] == settings.MAP_TILE_ATTRIBUTION
    assert config["socket_path"] == f"/ws/races/{race.slug}/"
    assert config["bounds"] == race.course.bounds
    assert config["athletes"] == 3


def test_race_page_of_an_unknown_race_is_404(client):
    assert client.get("/races/no-such-race/").status_code == 404


def test_modules_resolve_through_an_import_map_of_static_urls(client):
    race = make_race("VTR")
    html = client.get(race.get_absolute_url()).content.decode()
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))
    modules = imports["imports"]
    for name in ("connection.js", "state.js", "map.js", "board.js", "profile.js", "follow.js"):
        assert modules[f"raceweb/{name}"] == f"{settings.STATIC_URL}js/{name}"
    # every import in every module is one the map knows
    static_js = settings.BASE_DIR / "static" / "js"
    for path in static_js.glob("*.js"):
        for target in re.findall(r'from "([^"]+)"', path.read_text()):
            assert target in modules, f"{path.name} imports {target}"


def test_leaflet_is_served_from_static_with_its_licence(client):
    race = make_race("VTR")
    html = client.get(race.get_absolute_url()).content.decode()
    assert f'src="{settings.STATIC_URL}vendor/leaflet/leaflet.js"' in html
    assert "unpkg" not in html and "cdn" not in html.lower()
    vendor = settings.BASE_DIR / "static" / "vendor" / "leaflet"
    assert "Volodymyr Agafonkin" in (vendor / "LICENSE").read_text()
    assert '"version": "1.9.4"' in (vendor / "package.json").read_text()
    assert "Leaflet 1.9.4" in (vendor / "leaflet.js").read_text()[:200]
