"""A simulated race run through the relay core to the end, for the history's tests."""

import asyncio
import copy
import itertools
import json

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from races.models import Race
from races.relay.core import RelayCore
from races.simulation.driver import simulation_for
from races.spectators import snapshots


def run_to_the_end(race: Race, keep: set[int] = frozenset()) -> dict[int, dict]:
    """Every tick of the race's simulation as one relay frame (batch i ends at tick i).

    Returns what a spectator who joined before the start held after each tick in `keep`
    (the snapshot, then every update merged), by tick.
    """
    simulation = simulation_for(race)
    ticks = list(range(-1, simulation.last_tick + 1))
    batches = [simulation.events(a, b) for a, b in itertools.pairwise(ticks)]

    async def run() -> dict[int, dict]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(race.group_name, channel)
        core = RelayCore(frames_per_second=50)
        snapshot = await sync_to_async(snapshots.read_snapshot)(race.slug)
        held = {a["id"]: a for a in snapshot["athletes"]}
        seen: dict[int, dict] = {}
        for number, events in enumerate(batches):
            core.ingest(race.slug, events)
            await core.flush(core.feeds[race.slug])
            message = await asyncio.wait_for(layer.receive(channel), 5.0)
            for athlete in json.loads(message["text"])["athletes"]:
                held[athlete["id"]].update(copy.deepcopy(athlete))
            if number in keep:
                seen[number] = copy.deepcopy(held)
        return seen

    return async_to_sync(run)()
