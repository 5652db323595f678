"""Organizer accounts: an organization's staff reach only its races, by any admin URL;
the audit trail records their actions and lists, exports and prunes them."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from races.models import (
    Organization,
    OrganizerAction,
    OrganizerMembership,
    Race,
    SpectatorConnection,
)
from races.spectators import access, tokens
from tests.factories import make_race, unique_name

pytestmark = pytest.mark.django_db


def organizer_of(org: Organization) -> Client:
    user = User.objects.create_user(unique_name("staff").replace(" ", ""), is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="races")
    )  # every race permission: only the organization stands between it and B's races
    OrganizerMembership.objects.create(user=user, organization=org)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two_organizations():
    a, b = Organization.objects.create(name="A"), Organization.objects.create(name="B")
    race_a = make_race(unique_name("A race"), athletes=2, organization=a)
    race_b = make_race(unique_name("B race"), athletes=2, organization=b)
    return organizer_of(a), race_a, race_b


def race_state(race: Race) -> tuple:
    race.refresh_from_db()
    athletes = sorted(race.athletes.values_list("bib", "name"))
    return race.name, race.status, race.visibility, athletes


def test_organization_a_cannot_read_or_change_bs_race_by_any_admin_url(two_organizations):
    client, race_a, race_b = two_organizations
    before = race_state(race_b)
    b_athlete = race_b.athletes.first()
    pk = race_b.pk
    listing = client.get(reverse("admin:races_race_changelist")).content.decode()
    assert race_a.name in listing and race_b.name not in listing
    reads = [
        f"/admin/races/race/{pk}/change/",
        f"/admin/races/race/{pk}/delete/",
        f"/admin/races/race/{pk}/history/",
        f"/admin/races/race/{pk}/share/",
        *(f"/admin/races/race/{pk}/lifecycle/{name}/" for name in ("start", "stop", "reset")),
    ]
    for url in reads:
        for method in (client.get, client.post):
            response = method(url, {"name": "Taken", "post": "yes", "hours": "48"}, follow=True)
            assert race_b.name not in response.content.decode(), url
            assert response.status_code in (200, 404), url  # 200: the admin's "doesn't exist"
    for action in ("start_races", "stop_races", "reset_races", "export_start_list"):
        response = client.post(
            reverse("admin:races_race_changelist"),
            {"action": action, "_selected_action": [pk], "post": "yes"},
        )
        assert race_b.name.encode() not in response.content and b_athlete.name.encode() not in (
            response.content
        )
    # An inline row of A's race that names B's athlete must not reach it.
    form = {
        "name": race_a.name, "slug": race_a.slug, "visibility": "public",
        "time_compression": "20", "tick_seconds": "5", "seed": "42",
        "athletes-TOTAL_FORMS": "1", "athletes-INITIAL_FORMS": "1",
        "athletes-0-id": str(b_athlete.pk), "athletes-0-race": str(race_a.pk),
        "athletes-0-bib": "666", "athletes-0-name": "Hijacked", "athletes-0-gender": "male",
        "checkpoints-TOTAL_FORMS": "0", "checkpoints-INITIAL_FORMS": "0",
        "revoked_labels-TOTAL_FORMS": "0", "revoked_labels-INITIAL_FORMS": "0",
        "ghosts-TOTAL_FORMS": "0", "ghosts-INITIAL_FORMS": "0",
    }  # fmt: skip
    client.post(f"/admin/races/race/{race_a.pk}/change/", form)
    assert race_state(race_b) == before


def test_a_new_race_belongs_to_its_organizers_organization_and_superusers_see_all(
    two_organizations, admin_client
):
    client, race_a, race_b = two_organizations
    page = client.get(reverse("admin:races_race_add")).content.decode()
    assert 'name="visibility"' in page and 'name="organization"' not in page
    listing = admin_client.get(reverse("admin:races_race_changelist")).content.decode()
    assert race_a.name in listing and race_b.name in listing
    user = User.objects.get(organizer_membership__organization=race_a.organization)
    assert access.can_organize(user, race_a) and not access.can_organize(user, race_b)
    loner = User.objects.create_user("loner", is_staff=True)
    assert not access.can_organize(loner, race_a)
    assert not access.organized_races(loner).exists()


def test_organizer_actions_are_recorded_listed_and_exported(two_organizations):
    client, race_a, race_b = two_organizations
    client.post(f"/admin/races/race/{race_a.pk}/lifecycle/start/")
    client.post(f"/admin/races/race/{race_a.pk}/lifecycle/stop/")
    OrganizerAction.objects.create(
        at=timezone.now(), username="b-staff", race_slug=race_b.slug, action="start"
    )
    actions = list(OrganizerAction.objects.filter(race_slug=race_a.slug).order_by("at"))
    assert [row.action for row in actions] == ["start", "stop"]
    listing = client.get(reverse("admin:races_organizeraction_changelist")).content.decode()
    assert race_a.slug in listing and race_b.slug not in listing
    exported = client.post(
        reverse("admin:races_organizeraction_changelist"),
        {"action": "export_csv", "_selected_action": [row.pk for row in actions]},
    )
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0] == ["at", "user", "race", "action", "detail"]
    assert [row[3] for row in rows[1:]] == ["stop", "start"]


def test_the_share_link_page_and_the_command_mint_links_that_open_the_race(two_organizations):
    client, race_a, _ = two_organizations
    page = client.post(f"/admin/races/race/{race_a.pk}/share/", {"hours": "48", "label": "press"})
    link = page.context["link"]
    assert link.startswith(f"http://testserver/races/{race_a.slug}/#access=")
    claims = tokens.verify(link.split("#access=")[1])
    assert claims.label == "press"
    assert timedelta(hours=47.9) < claims.expires_at - timezone.now() <= timedelta(hours=48)
    out = io.StringIO()
    call_command("spectator_link", race_a.slug, "--hours", "2", "--label", "gate", stdout=out)
    assert tokens.verify(out.getvalue().strip().split("#access=")[1]).race == race_a.slug
    with pytest.raises(CommandError, match="No race"):
        call_command("spectator_link", "no-such-race")
    with pytest.raises(CommandError, match="--hours"):
        call_command("spectator_link", race_a.slug, "--hours", "-1")


@override_settings(AUDIT_RETENTION_DAYS=30)
def test_prune_audit_deletes_only_entries_older_than_the_retention():
    now = timezone.now()
    for days in (31, 29):
        SpectatorConnection.objects.create(
            race_slug="r", endpoint="race", connected_at=now - timedelta(days=days)
        )
        OrganizerAction.objects.create(
            at=now - timedelta(days=days), username="u", race_slug="r", action="stop"
        )
    out = io.StringIO()
    call_command("prune_audit", stdout=out)
    assert "Deleted 1 spectator connections and 1 organizer actions" in out.getvalue()
    assert SpectatorConnection.objects.count() == OrganizerAction.objects.count() == 1


def test_organization_a_cannot_watch_or_decide_in_bs_race_control(two_organizations):
    client, race_a, race_b = two_organizations
    b_athlete = race_b.athletes.first()
    assert client.get(reverse("race-control", args=[race_a.slug])).status_code == 200
    assert client.get(reverse("race-control", args=[race_b.slug])).status_code == 404
    assert client.get(reverse("race-control-alerts", args=[race_b.slug])).status_code == 404
    decide = reverse("race-control-decide", args=[race_b.slug])
    answer = client.post(decide, {"bib": b_athlete.bib, "kind": "dnf", "reason": "x"})
    assert answer.status_code == 404
    assert not race_b.decisions.exists()
