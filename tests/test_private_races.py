"""Who may watch: public, unlisted and private races at every door (page, API, sockets)."""

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client, override_settings

from races.models import Race, RevokedSpectatorLabel, SpectatorConnection
from races.relay.core import RelayCore
from races.spectators import access, tokens
from races.spectators.routing import websocket_urlpatterns
from tests.factories import EventFeed, started_race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]

application = URLRouter(websocket_urlpatterns)
PRIVATE = Race.Visibility.PRIVATE


def http_doors(client: Client, race: Race, bib: str) -> dict:
    """Status and body of every HTTP door of a race."""
    paths = [
        f"/races/{race.slug}/",
        f"/api/races/{race.slug}/",
        f"/api/races/{race.slug}/course.geojson",
        f"/api/races/{race.slug}/leaderboard",
        f"/api/races/{race.slug}/positions",
        f"/api/races/{race.slug}/athletes/{bib}/track",
    ]
    answers = {}
    for path in paths:
        response = client.get(path)
        answers[path] = (response.status_code, response.content)
    for body in (b"not json", b'{"token": 7}', json.dumps({"token": "x" * 5000}).encode()):
        response = client.post(f"/races/{race.slug}/access", body, "application/json")
        answers[body] = (response.status_code, response.content)
    return answers


async def socket_answer(path: str, headers=None, subprotocols=None) -> tuple:
    """What a socket gets first: (close code or None, first text or None). The seed stream
    says nothing when it admits a socket; its audit row tells it was admitted."""
    admitted = await sync_to_async(SpectatorConnection.objects.count)()
    socket = WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    for _ in range(100):
        if not await socket.receive_nothing(timeout=0.05):
            output = await socket.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                return output["code"], None
            await socket.disconnect()
            return None, output.get("text")
        if (
            path.startswith("/ws?")
            and await sync_to_async(SpectatorConnection.objects.count)() > admitted
        ):
            await socket.disconnect()
            return None, None
    raise AssertionError(f"{path}: neither closed nor admitted")


def socket_doors(race: Race, **kwargs) -> tuple:
    race_socket = async_to_sync(socket_answer)(f"/ws/races/{race.slug}/", **kwargs)
    seed_socket = async_to_sync(socket_answer)(f"/ws?race={race.exchange_name}", **kwargs)
    return race_socket, seed_socket


def watch_cookie(race: Race, token: str) -> list:
    return [(b"cookie", f"{access.cookie_name(race.slug)}={token}".encode())]


def test_a_private_race_answers_every_door_exactly_like_a_missing_race():
    race = started_race(athletes=2, visibility=PRIVATE)
    bib = race.athletes.first().bib
    client = Client()
    private_http, private_sockets = http_doors(client, race, bib), socket_doors(race)
    wrong_race_token = tokens.mint("some-other-race", 1)
    wrong = socket_doors(race, headers=watch_cookie(race, wrong_race_token))
    Race.objects.filter(pk=race.pk).delete()
    assert http_doors(client, race, bib) == private_http
    assert socket_doors(race) == private_sockets == wrong == ((4404, None), (4404, None))
    assert {status for status, _ in private_http.values()} == {404}


def test_a_share_link_opens_the_page_the_api_and_the_socket_and_is_audited():
    race = started_race(athletes=2, visibility=PRIVATE)
    token = tokens.mint(race.slug, 48, label="press")
    client = Client()
    traded = client.post(
        f"/races/{race.slug}/access", json.dumps({"token": token}), "application/json"
    )
    assert traded.status_code == 200
    assert traded.cookies[access.cookie_name(race.slug)]["httponly"]
    assert client.get(f"/races/{race.slug}/").status_code == 200
    assert client.get(f"/api/races/{race.slug}/leaderboard").status_code == 200
    bearer = Client(headers={"Authorization": f"Bearer {token}"})
    assert bearer.get(f"/api/races/{race.slug}/").status_code == 200
    (code, text), (seed_code, _) = socket_doors(race, headers=watch_cookie(race, token))
    assert code is None and json.loads(text)["type"] == "snapshot"
    assert seed_code is None  # admitted: the seed stream sends nothing until the next event
    by_protocol, _ = socket_doors(race, subprotocols=[access.SUBPROTOCOL, token])
    assert by_protocol[0] is None
    rows = SpectatorConnection.objects.filter(race_slug=race.slug, endpoint="race")
    assert [(row.label, row.disconnected_at is not None) for row in rows] == [("press", True)] * 2


def test_an_expired_or_revoked_link_says_why_at_every_door():
    race = started_race(athletes=2, visibility=PRIVATE)
    past = datetime.now(UTC) - timedelta(hours=3)
    expired = tokens.mint(race.slug, 1, now=past)
    client = Client()
    client.cookies[access.cookie_name(race.slug)] = expired
    page = client.get(f"/races/{race.slug}/")
    assert page.status_code == 401 and "expired" in page.content.decode()
    traded = Client().post(
        f"/races/{race.slug}/access", json.dumps({"token": expired}), "application/json"
    )
    assert traded.status_code == 401 and "expired" in traded.json()["error"]
    assert socket_doors(race, headers=watch_cookie(race, expired)) == ((4401, None), (4401, None))
    revoked = tokens.mint(race.slug, 1, label="sponsor")
    RevokedSpectatorLabel.objects.create(race=race, label="sponsor")
    client.cookies[access.cookie_name(race.slug)] = revoked
    page = client.get(f"/races/{race.slug}/")
    assert page.status_code == 403 and "withdrawn" in page.content.decode()
    assert socket_doors(race, headers=watch_cookie(race, revoked)) == ((4403, None), (4403, None))


def test_forged_and_foreign_tokens_are_refused_and_a_ticketing_site_can_mint_its_own():
    race = started_race(athletes=1, visibility=PRIVATE)
    exp = datetime.now(UTC) + timedelta(hours=1)
    claims = {"race": race.slug, "exp": exp, "aud": tokens.AUDIENCE}
    forged = jwt.encode(claims, "not-the-secret", algorithm="HS256")
    no_audience = jwt.encode({"race": race.slug, "exp": exp}, tokens.secret(), algorithm="HS256")
    for token in (forged, no_audience, "garbage", ""):
        assert access.spectator_access(race.slug, token).outcome is access.Outcome.HIDDEN
    with override_settings(SPECTATOR_TOKEN_SECRET="shared-with-the-ticketing-site"):
        ticket = jwt.encode(
            {**claims, "label": "ticket 991"}, "shared-with-the-ticketing-site", algorithm="HS256"
        )
        admitted = access.spectator_access(race.slug, ticket)
    assert admitted.allowed and admitted.label == "ticket 991"


@override_settings(SPECTATOR_TOKEN_RECHECK_SECONDS=0.2)
async def test_an_open_socket_closes_when_its_label_is_revoked_or_its_link_expires():
    race = await sync_to_async(started_race)(athletes=1, visibility=PRIVATE)
    revocable = tokens.mint(race.slug, 1, label="press")
    expiring = tokens.mint(race.slug, 1.5 / 3600)  # 1.5 seconds
    sockets = []
    for token in (revocable, expiring):
        socket = WebsocketCommunicator(
            application, f"/ws/races/{race.slug}/", headers=watch_cookie(race, token)
        )
        assert (await socket.connect(timeout=5))[0]
        assert json.loads(await socket.receive_from(timeout=5))["type"] == "snapshot"
        sockets.append(socket)
    await sync_to_async(RevokedSpectatorLabel.objects.create)(race=race, label="press")
    assert (await sockets[0].receive_output(timeout=5))["code"] == 4403
    assert (await sockets[1].receive_output(timeout=5))["code"] == 4401
    rows = SpectatorConnection.objects.filter(race_slug=race.slug).order_by("close_code")
    codes = await sync_to_async(lambda: [row.close_code for row in rows])()
    assert codes == [4401, 4403]


async def test_unlisted_and_private_races_stay_out_of_every_list_and_the_all_stream():
    unlisted = await sync_to_async(started_race)(athletes=2, visibility=Race.Visibility.UNLISTED)
    public = await sync_to_async(started_race)(athletes=2)
    client = Client()
    listed = await sync_to_async(lambda: client.get("/api/races/").json()["races"])()
    page = await sync_to_async(lambda: client.get("/").content.decode())()
    direct = await sync_to_async(lambda: client.get(f"/races/{unlisted.slug}/").status_code)()
    assert public.slug in {r["slug"] for r in listed} and unlisted.slug not in str(listed)
    assert public.name in page and unlisted.name not in page and direct == 200
    race_list = WebsocketCommunicator(application, "/ws/races/")
    await race_list.connect(timeout=5)
    first = json.loads(await race_list.receive_from(timeout=5))
    assert unlisted.slug not in str(first["races"]) and public.slug in str(first["races"])
    everything = WebsocketCommunicator(application, "/ws?race=all")
    one = WebsocketCommunicator(application, f"/ws?race={unlisted.exchange_name}")
    for socket in (everything, one):
        assert (await socket.connect(timeout=5))[0]
    core = RelayCore(frames_per_second=20)
    for race in (unlisted, public):
        core.ingest(race.slug, (await sync_to_async(EventFeed)(race)).starts())
        await core.flush(core.feeds[race.slug])
    got_all = [json.loads(await everything.receive_from(timeout=5)) for _ in range(2)]
    assert {event["race"] for event in got_all} == {public.exchange_name}
    assert await everything.receive_nothing(timeout=0.3)
    assert json.loads(await one.receive_from(timeout=5))["race"] == unlisted.exchange_name
    for socket in (race_list, everything, one):
        await socket.disconnect()


def test_staff_of_the_organizing_organization_watches_a_private_race_others_do_not():
    from races.models import Organization, OrganizerMembership

    ours, theirs = Organization.objects.create(name="Ours"), Organization.objects.create(name="B")
    race = started_race(athletes=1, visibility=PRIVATE, organization=ours)
    for org, expected in ((ours, 200), (theirs, 404)):
        user = User.objects.create_user(f"staff-{org.pk}", password="pw", is_staff=True)
        OrganizerMembership.objects.create(user=user, organization=org)
        client = Client()
        client.force_login(user)
        assert client.get(f"/races/{race.slug}/").status_code == expected
        session = client.cookies["sessionid"].value
        (code, _), _ = socket_doors(race, headers=[(b"cookie", f"sessionid={session}".encode())])
        assert code == (None if expected == 200 else 4404)
