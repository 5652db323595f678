"""The whole live pipeline against the real RabbitMQ: fanout -> relay -> layer -> daphne.

Two daphne web processes and a relay (`manage.py relay`) run as subprocesses in
distributed mode (channels-rabbitmq). The test publishes contract events into the race's
fanout with kombu, exactly where the simulator publishes, and watches real WebSocket
clients on both web processes.
"""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from kombu import Connection

from harness.spectator_client import Spectator
from harness.waiting import async_wait_until
from races import wire
from races.models import LiveRace, Organization, OrganizerMembership, Position, Race
from races.organizer import lifecycle
from races.relay import broker
from tests.conftest import raceweb_processes
from tests.factories import EventFeed, make_race, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]

ATHLETES = 8
# Our own control fanout: relays of other test runs on the shared broker never hear our
# races start (and ours never hear theirs).
CONTROL_EXCHANGE = f"{wire.CONTROL_EXCHANGE}.test-{uuid.uuid4().hex[:8]}"
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def pipeline(django_db_setup, django_db_blocker, tmp_path_factory, request):
    """One relay and two web processes for the module (they outlive each test's rows)."""
    from tests.conftest import require_service

    require_service("RabbitMQ", "127.0.0.1", 5672)
    url = "amqp://guest:guest@127.0.0.1:5672/"
    with django_db_blocker.unblock():
        processes = raceweb_processes(
            url, tmp_path_factory.mktemp("pipeline"), RELAY_CONTROL_EXCHANGE=CONTROL_EXCHANGE
        )
    try:
        processes.relay()
        web_a, web_b = processes.web("web-a"), processes.web("web-b")
        yield url, processes, web_a.replace("http", "ws"), web_b.replace("http", "ws")
    finally:
        processes.stop_all()
        print(processes.logs())
        with Connection(url) as conn:
            conn.default_channel.exchange_delete(CONTROL_EXCHANGE)


@pytest.fixture
def amqp_cleanup():
    """Delete the exchanges and relay queues of the races a test made."""
    slugs: list[str] = []
    yield slugs
    with Connection("amqp://guest:guest@127.0.0.1:5672/") as conn:
        channel = conn.default_channel
        for slug in slugs:
            channel.queue_delete(wire.relay_queue_name(slug))
            channel.exchange_delete(wire.exchange_name(slug))


class Race8:
    """A race of ATHLETES athletes, started through the lifecycle in distributed mode."""

    def __init__(self, url: str, cleanup: list[str], athletes: int = ATHLETES) -> None:
        self.url = url
        self.race = make_race(unique_name("Live"), athletes=athletes)
        cleanup.append(self.race.slug)
        self.feed: EventFeed | None = None
        self.published = 0

    def start(self) -> None:
        with override_settings(
            EMBEDDED=False, AMQP_URL=self.url, RELAY_CONTROL_EXCHANGE=CONTROL_EXCHANGE
        ):
            self.race = lifecycle.start_race(self.race)  # declares, then notifies the relays
        self.feed = EventFeed(self.race)

    def publish(self, events: list[dict]) -> None:
        """Into the race's fanout, as the simulator does (persistent JSON messages)."""
        with Connection(self.url, transport_options=broker.CONFIRMED) as conn:
            producer = conn.Producer()  # each publish returns once the broker confirmed it
            for event in events:
                producer.publish(
                    json.dumps(event),
                    exchange=broker.race_exchange(self.race.slug),
                    content_type="application/json",
                    delivery_mode=2,
                )
        self.published += len(events)

    def stored(self) -> int:
        return Position.objects.filter(race=self.race).count()

    def frame(self) -> int:
        return LiveRace.objects.filter(race=self.race).values_list("frame", flat=True).first() or 0


async def run_ticks(race: Race8, seconds: range, pause_s: float = 0.08) -> None:
    for second in seconds:
        await sync_to_async(race.publish)(race.feed.tick(second))
        await asyncio.sleep(pause_s)  # spread over several frames, as a live race is


async def settled(race: Race8, spectators: list[Spectator]) -> int:
    """Wait until every published event is stored and every spectator has the last frame."""

    async def all_stored() -> bool:
        return await sync_to_async(race.stored)() == race.published

    await async_wait_until(all_stored, DEADLINE_S, "the relay to store everything")
    last = await sync_to_async(race.frame)()
    await async_wait_until(
        lambda: all(s.frames() and s.frames()[-1] >= last for s in spectators),
        DEADLINE_S,
        f"every spectator to reach frame {last}",
    )
    return last


async def test_spectators_on_two_web_processes_get_every_frame_in_order(pipeline, amqp_cleanup):
    url, _, web_a, web_b = pipeline
    race = await sync_to_async(Race8)(url, amqp_cleanup)
    path = f"/ws/races/{race.race.slug}/"
    native = [
        await Spectator(web_a + path).open(),
        await Spectator(web_a + path).open(),
        await Spectator(web_b + path).open(),
    ]
    seed_one = await Spectator(f"{web_a}/ws?race={race.race.exchange_name}").open()
    seed_all = await Spectator(f"{web_b}/ws?race=all").open()
    await async_wait_until(
        lambda: all(s.of_type("snapshot") for s in native), DEADLINE_S, "snapshots"
    )
    assert all(s.messages[0]["race"]["status"] == "draft" for s in native)

    await sync_to_async(race.start)()
    await sync_to_async(race.publish)(race.feed.starts())
    await run_ticks(race, range(30, 30 * 16, 30))
    last = await settled(race, native)

    assert last >= 3, "the events should have been spread over several frames"
    for spectator in native:
        assert spectator.frames() == list(range(0, last + 1)), spectator.url
        assert spectator.of_type("snapshot") == spectator.messages[:1]
        assert len(spectator.of_type("update")) == last
        (started,) = spectator.of_type("race")  # they were told the race started
        assert started["status"] == "running" and started["started_at"]
    # The start events of a race started after they connected reached them.
    first_update = native[2].of_type("update")[0]
    assert {a["id"] for a in first_update["athletes"]} == {a.pk for a in race.feed.athletes}
    assert {a["status"] for a in first_update["athletes"]} == {"running"}
    # The seed-compatible streams got every event, one message each, starts first.
    await async_wait_until(
        lambda: (
            len(seed_one.messages) == race.published
            and len([m for m in seed_all.messages if m["race"] == race.race.exchange_name])
            == race.published
        ),
        DEADLINE_S,
        "every contract event on the seed endpoints",
    )
    assert [m["event"] for m in seed_one.messages[:ATHLETES]] == ["start"] * ATHLETES
    assert [m["seq"] for m in seed_one.messages] == sorted(m["seq"] for m in seed_one.messages)
    for spectator in [*native, seed_one, seed_all]:
        await spectator.close()


async def test_a_late_joiner_gets_everyone_and_a_reconnect_gets_what_it_missed(
    pipeline, amqp_cleanup
):
    url, _, web_a, web_b = pipeline
    race = await sync_to_async(Race8)(url, amqp_cleanup)
    path = f"/ws/races/{race.race.slug}/"
    watcher = await Spectator(web_a + path).open()  # web A's hub follows from the start
    await async_wait_until(lambda: watcher.messages, DEADLINE_S, "the watcher's snapshot")
    await sync_to_async(race.start)()
    await sync_to_async(race.publish)(race.feed.starts())
    await run_ticks(race, range(30, 30 * 6, 30))
    await settled(race, [watcher])

    late = await Spectator(web_b + path).open()
    await async_wait_until(lambda: late.messages, DEADLINE_S, "the late joiner's snapshot")
    snapshot = late.messages[0]
    assert snapshot["type"] == "snapshot" and snapshot["frame"] >= 2
    assert len(snapshot["athletes"]) == ATHLETES
    assert {a["status"] for a in snapshot["athletes"]} == {"running"}
    assert snapshot["athletes"][0]["distance_m"] == pytest.approx(150 * 4.0, abs=0.1)

    # A spectator of web A that last saw frame 1 comes back: only the frames it missed.
    back = await Spectator(f"{web_a}{path}?resume=1").open()
    await run_ticks(race, range(180, 30 * 10, 30))
    last = await settled(race, [watcher, late, back])
    assert back.of_type("snapshot") == []
    assert back.frames() == list(range(2, last + 1))
    assert late.frames() == list(range(snapshot["frame"], last + 1))
    for spectator in (watcher, late, back):
        await spectator.close()


async def test_frames_bigger_than_a_socket_buffer_arrive_whole_and_in_order(pipeline, amqp_cleanup):
    url, _, web_a, _ = pipeline
    big = await sync_to_async(Race8)(url, amqp_cleanup, athletes=1500)
    path = f"/ws/races/{big.race.slug}/"
    spectators = [await Spectator(web_a + path).open() for _ in range(3)]
    await async_wait_until(lambda: all(s.messages for s in spectators), DEADLINE_S, "the snapshots")
    slow = spectators[0]
    slow.pause_reading()  # frames pile up: partial writes, then Twisted's buffer
    await sync_to_async(big.start)()
    await sync_to_async(big.publish)(big.feed.starts())
    await run_ticks(big, range(30, 120, 30), pause_s=0.3)
    await async_wait_until(
        lambda: all(s.frames()[-1] >= 3 for s in spectators[1:]), DEADLINE_S, "readers"
    )
    assert slow.frames() == [0]
    slow.resume_reading()
    last = await settled(big, spectators)
    for spectator in spectators:
        assert spectator.frames() == list(range(0, last + 1))
        held: dict[int, dict] = {a["id"]: a for a in spectator.messages[0]["athletes"]}
        for update in spectator.of_type("update"):
            for athlete in update["athletes"]:
                held[athlete["id"]].update(athlete)
        assert len(held) == 1500
        for i, athlete in enumerate(big.feed.athletes):
            expected = 90 * big.feed.speed(i)
            assert held[athlete.pk]["distance_m"] == pytest.approx(expected, abs=0.1)
    biggest = max(len(json.dumps(m)) for m in spectators[0].messages)
    assert biggest > 300_000  # well past one socket buffer: partial writes happened
    for spectator in spectators:
        await spectator.close()


async def test_a_second_relay_is_a_hot_standby_never_a_double(pipeline, amqp_cleanup):
    url, processes, web_a, web_b = pipeline
    relays = {
        "relay": None,
        "relay-standby": await asyncio.to_thread(processes.relay, "relay-standby"),
    }
    relays["relay"] = processes.named("relay")
    race = await sync_to_async(Race8)(url, amqp_cleanup)
    path = f"/ws/races/{race.race.slug}/"
    spectator = await Spectator(web_a + path).open()
    await sync_to_async(race.start)()
    await sync_to_async(race.publish)(race.feed.starts())
    await run_ticks(race, range(30, 30 * 8, 30))
    last = await settled(race, [spectator])
    # Two relays consume the queue, yet every frame exists exactly once.
    assert spectator.frames() == list(range(0, last + 1))
    active_line = f"relay active for {race.race.slug}"
    active = [name for name in relays if active_line in processes.log(name)]
    assert len(active) == 1, active

    await asyncio.to_thread(processes.kill, active[0])  # the active relay dies
    standby = next(name for name in relays if name != active[0])
    await run_ticks(race, range(240, 30 * 14, 30))
    final = await settled(race, [spectator])
    assert active_line in processes.log(standby)
    updates = [m["frame"] for m in spectator.messages if m["type"] == "update"]
    assert len(updates) == len(set(updates)), "a frame number was sent twice"
    assert final > last
    late = await Spectator(web_b + path).open()
    await async_wait_until(lambda: late.messages, DEADLINE_S, "a snapshot after the failover")
    leader = late.messages[0]["athletes"][0]
    assert leader["distance_m"] == pytest.approx(390 * 4.0, abs=0.1)
    await spectator.close()
    await late.close()


# ---- race control's decisions through the whole pipeline (issue 13) ----------------------


def _leaderboard_status(web: str, slug: str, athlete_id: int) -> str | None:
    import urllib.request

    http = web.replace("ws", "http", 1)
    with urllib.request.urlopen(f"{http}/api/races/{slug}/leaderboard", timeout=5) as answer:
        athletes = json.loads(answer.read())["athletes"]
    return next((a["status"] for a in athletes if a["id"] == athlete_id), None)


def _held_status(spectator: Spectator, athlete_id: int) -> str | None:
    status = None
    for message in spectator.messages:
        for athlete in message.get("athletes") or []:
            if athlete["id"] == athlete_id and "status" in athlete:
                status = athlete["status"]
    return status


async def test_a_dnf_marked_in_race_control_shows_on_every_web_process_within_a_second(
    pipeline, amqp_cleanup
):
    """The organizer's form (the view, in distributed mode) → control exchange → relay →
    stored frame → both web processes' sockets and leaderboard API; then undo, after the
    finish (a results correction)."""
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    url, _, web_a, web_b = pipeline
    race = await sync_to_async(Race8)(url, amqp_cleanup, athletes=3)
    path = f"/ws/races/{race.race.slug}/"
    spectators = [await Spectator(web_a + path).open(), await Spectator(web_b + path).open()]
    await sync_to_async(race.start)()
    await sync_to_async(race.publish)(race.feed.starts())
    await run_ticks(race, range(30, 120, 30))
    await settled(race, spectators)
    athlete = race.feed.athletes[0]
    slug = race.race.slug

    def organizer_marks(kind: str, **form) -> None:
        # An organizer of the race's organization (race control is scoped by it).
        organization = Organization.objects.create(name=unique_name("Org"))
        Race.objects.filter(slug=slug).update(organization=organization)
        organizer = User.objects.create_user(unique_name("org").replace(" ", ""), is_staff=True)
        OrganizerMembership.objects.create(user=organizer, organization=organization)
        client = Client()
        client.force_login(organizer)
        with override_settings(
            EMBEDDED=False, AMQP_URL=url, RELAY_CONTROL_EXCHANGE=CONTROL_EXCHANGE
        ):
            answer = client.post(
                reverse("race-control-decide", args=[slug]),
                {"bib": athlete.bib, "kind": kind, **form},
            )
        assert answer.status_code == 302

    async def everywhere(status: str) -> bool:
        for web in (web_a, web_b):
            if await asyncio.to_thread(_leaderboard_status, web, slug, athlete.pk) != status:
                return False
        return all(_held_status(s, athlete.pk) == status for s in spectators)

    began = asyncio.get_running_loop().time()
    await sync_to_async(organizer_marks)("dnf", reason="retired at CP1")
    await async_wait_until(lambda: everywhere("dnf"), DEADLINE_S, "the DNF everywhere")
    took = asyncio.get_running_loop().time() - began
    print(f"DNF on every page and API after {took:.3f} s")
    assert took < 1.0, f"the DNF took {took:.2f} s to reach every page and API"

    # A results correction after the finish: undo it, once the race is finished.
    def finish() -> None:
        with override_settings(
            EMBEDDED=False, AMQP_URL=url, RELAY_CONTROL_EXCHANGE=CONTROL_EXCHANGE
        ):
            lifecycle.finish_race(race.race)

    await sync_to_async(finish)()
    await async_wait_until(
        lambda: all(
            any(m.get("status") == "finished" for m in s.of_type("race")) for s in spectators
        ),
        DEADLINE_S,
        "the finish notice",
    )
    await sync_to_async(organizer_marks)("undo", reason="he walked back in")
    await async_wait_until(lambda: everywhere("running"), DEADLINE_S, "the undo everywhere")
    for spectator in spectators:
        assert spectator.frames() == list(range(0, spectator.frames()[-1] + 1))
        await spectator.close()
