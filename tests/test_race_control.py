"""Race control's page, alerts feed and decision form (staff only), and the relay's
alert watch feeding it."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.contrib.auth.models import User
from django.urls import reverse

from races.models import AthleteDecision, RaceAlerts
from races.operations import metrics
from races.relay import embedded
from tests.factories import EventFeed, make_race, started_race, unique_name


@pytest.fixture
def race(db):
    return started_race(athletes=3)


def test_race_control_is_for_staff_only(client, race):
    url = reverse("race-control", args=[race.slug])
    assert client.get(url).status_code == 302  # to the admin's login
    User.objects.create_user("fan", password="x")
    client.login(username="fan", password="x")
    assert "/admin/login/" in client.get(url)["Location"]
    assert client.post(reverse("race-control-decide", args=[race.slug])).status_code == 302
    assert not AthleteDecision.objects.exists()


def test_the_page_lists_the_alerts_in_force_with_how_long_and_where(admin_client, race):
    athlete = race.athletes.first()
    alert = {"athlete_id": athlete.pk, "bib": athlete.bib, "name": athlete.name,
             "kind": "no_position", "since": "2026-05-01T09:10:00Z", "lat": 46.5,
             "lon": 11.3, "distance_m": 4200.0, "detail": "no position since"}  # fmt: skip
    RaceAlerts.objects.create(race=race, alerts=[alert])
    page = admin_client.get(reverse("race-control", args=[race.slug]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "No position" in text and athlete.name in text and "km 4.2" in text
    feed = admin_client.get(reverse("race-control-alerts", args=[race.slug])).json()
    assert [a["kind"] for a in feed["alerts"]] == ["no_position"]


def test_a_decision_is_recorded_with_who_and_why_and_a_refusal_says_why(admin_client, race):
    athlete = race.athletes.first()
    url = reverse("race-control-decide", args=[race.slug])
    refused = admin_client.post(url, {"bib": athlete.bib, "kind": "dnf", "reason": ""}, follow=True)
    assert "A DNF needs a reason" in refused.content.decode()
    done = admin_client.post(
        url, {"bib": athlete.bib, "kind": "dnf", "reason": "retired at CP2"}, follow=True
    )
    assert "Did not finish" in done.content.decode()
    decision = AthleteDecision.objects.get(athlete=athlete)
    assert (decision.kind, decision.reason, decision.decided_by) == (
        "dnf",
        "retired at CP2",
        "admin",
    )
    admin_client.post(url, {"bib": athlete.bib, "kind": "undo", "reason": "back on course"})
    assert AthleteDecision.objects.filter(athlete=athlete, kind="undo", undoes=decision).exists()
    bad = admin_client.post(url, {"bib": "nope", "kind": "dns"}, follow=True)
    assert "No athlete with bib" in bad.content.decode()
    for form, says in [
        ({"kind": "dnf", "reason": "x" * 301}, "under 300 characters"),
        ({"kind": "finish_time", "finish_time": "1e400"}, "H:MM:SS"),
        ({"kind": "finish_time", "finish_time": "soon"}, "is not a time"),
        ({"kind": "disqualify"}, "Unknown decision"),
    ]:
        answer = admin_client.post(url, {"bib": athlete.bib, **form}, follow=True)
        assert answer.status_code == 200 and says in answer.content.decode(), form
    assert admin_client.get(reverse("admin:races_athletedecision_changelist")).status_code == 200


def test_the_admin_change_page_links_race_control_and_the_live_page(admin_client, race):
    page = admin_client.get(reverse("admin:races_race_change", args=[race.pk])).content.decode()
    assert reverse("race-control", args=[race.slug]) in page
    assert race.get_absolute_url() in page


@pytest.mark.django_db(transaction=True)
async def test_the_relay_raises_an_alert_for_a_stalled_athlete_and_counts_it_once(settings):
    settings.RACE_ALERT_NO_POSITION_S = 120.0
    settings.RACE_ALERT_CHECK_EVERY_S = 0.05
    channel_layers.backends.clear()
    try:
        race = await sync_to_async(started_race)(athletes=3)
        feed = await sync_to_async(EventFeed)(race)
        stalled, *others = feed.athletes
        before = metrics.RACE_ALERTS.labels(kind="no_position")._value.get()
        core = embedded.start()
        core.ingest(race.slug, feed.starts() + feed.tick(60))
        core.ingest(race.slug, [feed.event(a, 600, 600 * 3.0) for a in others])

        async def alerts() -> list:
            row = await sync_to_async(RaceAlerts.objects.filter(race=race).first)()
            return row.alerts if row else []

        for _ in range(100):
            if any(a["athlete_id"] == stalled.pk for a in await alerts()):
                break
            await asyncio.sleep(0.05)
        found = [a for a in await alerts() if a["athlete_id"] == stalled.pk]
        assert [a["kind"] for a in found] == ["no_position"]
        assert found[0]["since"] == (race.started_at + timedelta(seconds=60)).isoformat().replace(
            "+00:00", "Z"
        )
        await asyncio.sleep(0.3)  # several more checks: still one episode
        after = metrics.RACE_ALERTS.labels(kind="no_position")._value.get()
        assert after - before == 1
    finally:
        embedded.stop()
        channel_layers.backends.clear()


def test_race_control_of_a_race_that_has_not_started_says_decisions_wait(admin_client):
    race = make_race(unique_name(), athletes=2)
    page = admin_client.get(reverse("race-control", args=[race.slug])).content.decode()
    assert "Decisions apply once the race has started" in page
