"""Device tokens in the admin: an organizer creates one for an athlete of its own races,
sees the URL to paste into each app and a QR code, revokes it; both are audited, and a
revoked token is answered 403 (an unknown one 401) by the endpoints."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from races.models import DeviceToken, Organization, OrganizerAction, OrganizerMembership, Race
from tests.factories import make_race, unique_name

pytestmark = pytest.mark.django_db


def organizer_of(org: Organization) -> Client:
    user = User.objects.create_user(unique_name("staff").replace(" ", ""), is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="races"))
    OrganizerMembership.objects.create(user=user, organization=org)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def organizers():
    a, b = Organization.objects.create(name="A"), Organization.objects.create(name="B")
    race_a = make_race(unique_name("A"), athletes=2, organization=a, tracking="tracked")
    race_b = make_race(unique_name("B"), athletes=2, organization=b, tracking="tracked")
    return organizer_of(a), race_a, race_b


def test_tokens_are_random_and_unique():
    race = make_race(unique_name(), athletes=2)
    first, second = race.athletes.all()
    tokens = {DeviceToken.objects.create(athlete=a).token for a in (first, second, first)}
    assert len(tokens) == 3 and all(len(t) >= 30 for t in tokens)


def test_an_organizer_creates_a_token_and_sees_every_apps_setup_and_a_qr_code(organizers):
    client, race_a, _ = organizers
    athlete = race_a.athletes.first()
    add = client.post(
        reverse("admin:races_devicetoken_add"), {"athlete": athlete.pk, "label": "Jane's phone"}
    )
    assert add.status_code == 302, add.content.decode()[:2000]
    token = DeviceToken.objects.get(athlete=athlete)
    page = client.get(reverse("admin:races_devicetoken_change", args=[token.pk])).content.decode()
    assert f"http://testserver/ingest/owntracks/{token.token}/" in page
    assert f"http://testserver/ingest/osmand/?id={token.token}&amp;lat={{0}}" in page
    assert f"http://testserver/ingest/traccar/?token={token.token}" in page
    assert "Traccar Client" in page and "<svg" in page  # the QR code, inline
    action = OrganizerAction.objects.get(action="device_token")
    assert action.race_slug == race_a.slug and athlete.bib in action.detail


def test_an_organizer_sees_and_creates_tokens_of_its_own_races_only(organizers):
    client, race_a, race_b = organizers
    mine = DeviceToken.objects.create(athlete=race_a.athletes.first())
    theirs = DeviceToken.objects.create(athlete=race_b.athletes.first())
    listing = client.get(reverse("admin:races_devicetoken_changelist")).content.decode()
    assert race_a.name in listing and race_b.name not in listing
    assert f"/devicetoken/{mine.pk}/" in listing and f"/devicetoken/{theirs.pk}/" not in listing
    assert client.get(reverse("admin:races_devicetoken_change", args=[theirs.pk])).status_code in (
        302,
        404,
    )
    refused = client.post(
        reverse("admin:races_devicetoken_add"), {"athlete": race_b.athletes.first().pk}
    )
    assert refused.status_code == 200  # the form: B's athlete is not a choice
    assert DeviceToken.objects.filter(athlete__race=race_b).count() == 1


def test_revoking_is_audited_and_the_endpoints_say_revoked_not_unknown(organizers, settings):
    settings.TRACKER_FIXES_PER_SECOND = 0
    client, race_a, _ = organizers
    token = DeviceToken.objects.create(athlete=race_a.athletes.first(), label="watch")
    query = f"lat=48.2&lon=16.3&timestamp=1764547200&id={token.token}"
    device = Client()
    assert device.get("/ingest/osmand/?" + query).status_code == 200  # race not running: 200
    client.post(
        reverse("admin:races_devicetoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert OrganizerAction.objects.filter(action="device_revoke", race_slug=race_a.slug).exists()
    revoked = device.get("/ingest/osmand/?" + query)
    assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]
    unknown = device.get("/ingest/osmand/?" + query.replace(token.token, "x" + token.token))
    assert unknown.status_code == 401 and "unknown" in unknown.json()["error"]
    page = client.get(reverse("admin:races_devicetoken_change", args=[token.pk])).content.decode()
    assert "revoked" in page and f"/ingest/owntracks/{token.token}/" not in page


def test_tokens_are_not_deleted_but_revoked(organizers):
    client, race_a, _ = organizers
    token = DeviceToken.objects.create(athlete=race_a.athletes.first())
    response = client.get(reverse("admin:races_devicetoken_delete", args=[token.pk]))
    assert response.status_code == 403
    assert Race.objects.filter(pk=race_a.pk).exists() and DeviceToken.objects.filter(pk=token.pk)


def test_tokens_for_a_whole_start_list_and_their_setup_as_csv(organizers):
    client, race_a, _ = organizers
    first = race_a.athletes.order_by("pk").first()
    kept = DeviceToken.objects.create(athlete=first, label="own phone")
    changelist = reverse("admin:races_race_changelist")
    done = client.post(
        changelist, {"action": "create_device_tokens", "_selected_action": [race_a.pk]}
    )
    assert done.status_code == 302, done.content.decode()[-3000:]
    tokens = DeviceToken.objects.filter(athlete__race=race_a)
    assert tokens.count() == race_a.athletes.count()  # one each; the existing one kept
    assert tokens.filter(athlete=first).get() == kept
    assert OrganizerAction.objects.filter(action="device_token", detail="1 created").exists()
    Race.objects.filter(pk=race_a.pk).update(name="=HYPERLINK(1)")
    DeviceToken.objects.filter(pk=kept.pk).update(label="=cmd|' /C calc'!A0")
    export = client.post(
        reverse("admin:races_devicetoken_changelist"),
        {"action": "export_setup_csv", "_selected_action": [t.pk for t in tokens]},
    )
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0][:5] == ["race", "bib", "name", "label", "token"]
    assert len(rows) == 1 + tokens.count()
    mine = next(r for r in rows if r[4] == kept.token)
    assert mine[3].startswith("'=")  # no formula injection from a label
    assert f"http://testserver/ingest/owntracks/{kept.token}/" in mine
