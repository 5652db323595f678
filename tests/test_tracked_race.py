"""A tracked race: no simulation runs it; the relay takes its trackers' fixes and finishes
it once everyone is in (or the organizer stops it)."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from harness.waiting import async_wait_until
from races import wire
from races.models import LiveAthlete, Position, Race, RaceAlerts
from races.organizer import lifecycle
from races.relay import embedded
from races.simulation import driver
from races.simulation import embedded_runner as embedded_simulation
from tests.factories import make_race
from tests.race_state_builders import point_at

pytestmark = pytest.mark.django_db(transaction=True)

LOOP = "route-only-alltrails-ecology-trail.gpx"  # 3.2 km
TWO_HOURS = timedelta(hours=2)


def tracked_race(athletes: int = 3) -> Race:
    race = lifecycle.start_race(make_race(gpx=LOOP, athletes=athletes, tracking="tracked"))
    # It started two hours ago: the trackers' fixes of the last hour are all in the past.
    Race.objects.filter(pk=race.pk).update(started_at=timezone.now() - TWO_HOURS)
    race.refresh_from_db()
    return race


def fixes(race: Race, finish_s: dict[str, float], every_s: float = 30.0) -> list[list[dict]]:
    """Per time step, each athlete's fix (old contract: name, no seq) at an even pace, the
    last one on the line at their finish time."""
    points, length = race.course.points, race.course.length_m
    steps: list[list[dict]] = []
    second = every_s
    while second < max(finish_s.values()) + every_s:
        batch = []
        for name, total in finish_s.items():
            at = min(second, total)
            if second - every_s >= total:
                continue
            lat, lon = point_at(points, length * at / total)
            batch.append(
                {
                    "athlete": name,
                    "gender": "female",
                    "race": race.exchange_name,
                    "location": {"latitude": lat, "longitude": lon},
                    "elevation": None,
                    "time": wire.iso(race.started_at + timedelta(seconds=at)),
                    "event": "running",
                }
            )
        steps.append(batch)
        second += every_s
    return steps


async def test_a_tracked_race_runs_no_simulation_and_finishes_when_everyone_is_in(
    fresh_layer, settings
):
    embedded.start()  # the relay in this event loop, as in the web process
    embedded_simulation.start()
    try:
        race = await sync_to_async(tracked_race)()
        names = [a.name async for a in race.athletes.order_by("bib")]
        finish_s = {names[0]: 1500.0, names[1]: 1320.0, names[2]: 1800.0}
        # Nobody simulates it, now or when it looks quiet to the watchdog.
        assert race not in await sync_to_async(embedded_simulation.races_to_run)()
        assert race not in await sync_to_async(driver.quiet_races)(1.0)
        assert not await sync_to_async(driver.claim)(race.pk, race.generation, "sim", "")
        for batch in await sync_to_async(fixes)(race, finish_s):
            embedded.publish(race.exchange_name, batch)

        async def finished() -> bool:
            return (await Race.objects.aget(pk=race.pk)).status == Race.Status.FINISHED

        await async_wait_until(finished, 30, "the relay to finish the tracked race")
        athletes = {
            live.state["name"]: live.state async for live in LiveAthlete.objects.filter(race=race)
        }
        assert {name: athletes[name]["rank"] for name in names} == {
            names[1]: 1,
            names[0]: 2,
            names[2]: 3,
        }
        for name, total in finish_s.items():
            assert athletes[name]["splits"][-1]["split_s"] == pytest.approx(total, abs=0.5)
        # Every stored position is a tracker's fix (seq from its time), none simulated.
        seqs = [p.seq async for p in Position.objects.filter(race=race)]
        assert seqs and min(seqs) >= wire.tracker_seq(0, race.started_at)
        assert (await Race.objects.aget(pk=race.pk)).sim_owner == ""
    finally:
        await asyncio.to_thread(embedded_simulation.stop)


async def test_the_organizer_stops_a_tracked_race_while_athletes_are_out(fresh_layer):
    embedded.start()
    race = await sync_to_async(tracked_race)()
    names = [a.name async for a in race.athletes.order_by("bib")]
    # The first ten minutes of a long race.
    steps = (await sync_to_async(fixes)(race, dict.fromkeys(names, 3600.0)))[:5]
    for batch in steps:
        embedded.publish(race.exchange_name, batch)

    async def all_running() -> bool:
        states = [live.state["status"] async for live in LiveAthlete.objects.filter(race=race)]
        return states == ["running"] * len(names)

    await async_wait_until(all_running, 30, "every athlete running")
    stopped = await sync_to_async(lifecycle.stop_race)(race)
    assert stopped.status == Race.Status.STOPPED
    assert await Position.objects.filter(race=race).acount() == 5 * len(names)


async def test_race_control_shows_each_tracker_battery_and_newest_fix_spectators_never(
    fresh_layer, settings, admin_client
):
    settings.RACE_ALERT_CHECK_EVERY_S = 0.05
    embedded.start()
    race = await sync_to_async(tracked_race)()
    names = [a.name async for a in race.athletes.order_by("bib")]
    steps = (await sync_to_async(fixes)(race, dict.fromkeys(names, 3600.0)))[:3]
    for batch in steps:
        for number, event in enumerate(batch):
            event.update(source="owntracks", battery_pct=90.0 - 40 * number, accuracy_m=6.5)
        embedded.publish(race.exchange_name, batch)
    ids = [a.pk async for a in race.athletes.order_by("bib")]

    async def devices() -> dict:
        row = await RaceAlerts.objects.filter(race=race).afirst()
        return row.devices if row else {}

    await async_wait_until(
        lambda: devices_of_all(devices, ids), 30, "the relay to store every tracker"
    )
    feed = await sync_to_async(admin_client.get)(reverse("race-control-alerts", args=[race.slug]))
    shown = feed.json()["devices"]
    assert shown[str(ids[0])] == {
        "source": "owntracks",
        "fix_time": steps[-1][0]["time"],
        "battery_pct": 90,
        "accuracy_m": 6.5,
    }
    assert shown[str(ids[2])]["battery_pct"] == 10
    page = await sync_to_async(admin_client.get)(reverse("race-control", args=[race.slug]))
    assert "<th>Battery</th>" in page.content.decode()
    # The spectators' athlete form has no tracker details.
    public = [live.state async for live in LiveAthlete.objects.filter(race=race)]
    assert public and not any({"battery_pct", "source"} & set(state) for state in public)


async def devices_of_all(devices, ids: list[int]) -> bool:
    stored = await devices()
    return {str(pk) for pk in ids} <= set(stored)


def one_runner(race: Race, seconds: list[float], speed: float = 2.0) -> list[dict]:
    """The first athlete's fixes at these race seconds, as a phone sends them (by bib)."""
    athlete = race.athletes.order_by("bib").first()
    points = race.course.points
    out = []
    for second in seconds:
        lat, lon = point_at(points, speed * second)
        out.append(
            {
                "bib": athlete.bib,
                "location": {"latitude": lat, "longitude": lon},
                "elevation": None,
                "time": wire.iso(race.started_at + timedelta(seconds=second)),
                "event": "running",
                "source": "osmand",
            }
        )
    return out


async def stored_at(race: Race, second: float) -> bool:
    """Whether the fix of race second `second` is stored (every earlier one is processed:
    the relay takes one race's events in order)."""
    at = race.started_at + timedelta(seconds=second)
    return await Position.objects.filter(race=race, time=at).aexists()


async def test_late_repeated_and_reordered_fixes_are_stored_once_and_never_move_back(fresh_layer):
    embedded.start()
    race = await sync_to_async(tracked_race)()
    send = sync_to_async(one_runner)

    async def live_distance() -> float:
        live = await LiveAthlete.objects.filter(race=race).aget()
        return live.state["distance_m"]

    embedded.publish(race.exchange_name, await send(race, [60, 120, 180, 600]))
    await async_wait_until(lambda: stored_at(race, 600), 30, "the fix of 600 s")
    assert await live_distance() == pytest.approx(1200, abs=25)
    # The phone's offline buffer comes late, newest first, and the phone repeats fixes.
    embedded.publish(race.exchange_name, await send(race, [540, 420, 300, 240, 120, 600]))
    embedded.publish(race.exchange_name, await send(race, [660]))
    await async_wait_until(lambda: stored_at(race, 660), 30, "the fix of 660 s")
    assert await Position.objects.filter(race=race).acount() == 9  # 60 ... 660, once each
    assert await live_distance() == pytest.approx(1320, abs=25)
    late = [p.distance_m async for p in Position.objects.filter(race=race).order_by("time")]
    assert late == sorted(late), "stored distances follow the fixes' times"
    # A relay restart (state from the stored rows): the same fixes again are still
    # duplicates, and the athlete is not moved back.
    embedded.stop()
    embedded.start()
    embedded.publish(race.exchange_name, await send(race, [600, 300, 720]))
    await async_wait_until(lambda: stored_at(race, 720), 30, "the fix of 720 s")
    assert await Position.objects.filter(race=race).acount() == 10
    assert await live_distance() == pytest.approx(1440, abs=25)


async def test_a_seq_less_event_on_a_simulated_race_is_refused(fresh_layer):
    from tests.factories import EventFeed, started_race

    embedded.start()
    race = await sync_to_async(started_race)(athletes=2)
    feed = await sync_to_async(EventFeed)(race)
    fix = (await sync_to_async(one_runner)(race, [0]))[0]
    embedded.publish(race.exchange_name, [fix, *feed.starts()])

    async def starts_stored() -> bool:
        return await Position.objects.filter(race=race).acount() >= 2

    await async_wait_until(starts_stored, 30, "the simulation's start events")
    assert await Position.objects.filter(race=race).acount() == 2  # not the tracker's fix
