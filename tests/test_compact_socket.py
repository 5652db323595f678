"""`raceweb.v2` on `ws/races/<slug>/`: asked for by subprotocol, the same race as v1.

A v1 spectator (no subprotocol: JSON, unchanged) and a v2 spectator watch one race fed
by the relay core on the in-memory layer; after every frame the v2 spectator's decoded
state equals the v1 spectator's. Resume, a lost frame's snapshot and race notices work
on v2 as on v1.
"""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator

from races import wire, wire_v2
from races.spectators import race_hub
from tests.test_consumers import Live, application, connect, receive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


class Spectator:
    """A v2 client: decodes each message into the v1 form and merges it like state.js."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.socket = communicator
        self.athletes: dict[int, dict] = {}
        self.race: dict = {}
        self.frame: int | None = None
        self.binary = 0  # messages received in binary (v2) form

    async def next(self) -> dict:
        output = await self.socket.receive_output(timeout=5)
        assert output["type"] == "websocket.send", output
        if output.get("text") is not None:  # race notices, pong; frames no v2 reader awaited
            message = json.loads(output["text"])
            if message["type"] not in ("snapshot", "update"):
                return message
        else:
            self.binary += 1
            message = wire_v2.decode(output["bytes"], self.athletes)
        if message["type"] == "snapshot":
            self.athletes = {a["id"]: a for a in message["athletes"]}
            self.race = message["race"]
        else:
            assert message["frame"] == self.frame + 1
            wire.merge_update(self.athletes, self.race, message)
        self.frame = message["frame"]
        return message


async def compact(path: str) -> Spectator:
    communicator = WebsocketCommunicator(application, path, subprotocols=[wire_v2.SUBPROTOCOL])
    connected, subprotocol = await communicator.connect(timeout=5)
    assert connected and subprotocol == wire_v2.SUBPROTOCOL
    return Spectator(communicator)


async def test_a_v2_spectator_and_a_v1_spectator_hold_the_same_race_after_every_frame():
    live = await Live.start(athletes=6)
    await live.frame()
    path = f"/ws/races/{live.race.slug}/"
    v1 = await connect(path)
    v2 = await compact(path)
    snapshot = await receive(v1)
    assert (await v2.next())["frame"] == snapshot["frame"] == 1
    held = {a["id"]: a for a in snapshot["athletes"]}
    race = snapshot["race"]
    for expected in range(2, 8):
        await live.frame()
        update = await receive(v1)
        wire.merge_update(held, race, update)
        assert (await v2.next())["frame"] == update["frame"] == expected
        assert v2.athletes == held and v2.race == race
    assert {a["status"] for a in held.values()} == {"running"}
    await live.core.race_ended(live.race.slug, "finished")
    assert (await receive(v1)) == (await v2.next())  # the notice is the same JSON
    await v1.disconnect()
    await v2.socket.disconnect()


async def test_v2_resume_gets_the_missed_frames_and_a_lost_frame_a_fresh_snapshot():
    live = await Live.start()
    path = f"/ws/races/{live.race.slug}/"
    first = await compact(path)
    await first.next()
    for _ in range(2):
        await live.frame()
        await first.next()
    await first.socket.disconnect()
    for _ in range(3):
        await live.frame()
    again = await compact(f"{path}?resume=2")
    again.athletes, again.race, again.frame = first.athletes, first.race, 2
    assert [(await again.next())["frame"] for _ in range(3)] == [3, 4, 5]
    hub = await race_hub.race_hub(live.race.slug)
    assert again.athletes == hub.athletes
    layer, send = live.core.layer, live.core.layer.group_send

    async def lose(group, message):
        return None

    layer.group_send = lose
    await live.frame()  # frame 6 lost on the way: the hub resyncs at 7 with a snapshot
    layer.group_send = send
    await live.frame()
    snapshot = await again.next()
    assert (snapshot["type"], snapshot["frame"]) == ("snapshot", 7)
    assert again.athletes == hub.athletes
    await again.socket.disconnect()


async def test_a_resuming_v2_socket_gets_missed_frames_in_v2_and_one_without_v2_as_json():
    """The relay encodes every frame in v2 once, whoever listens; a frame it could not
    encode reaches v2 sockets as JSON, which they read too."""
    live = await Live.start()
    path = f"/ws/races/{live.race.slug}/"
    watcher = await connect(path)  # keeps the hub alive, JSON
    await receive(watcher)
    reader = await compact(path)
    await reader.next()
    await live.frame()
    await receive(watcher)
    assert (await reader.next())["frame"] == 1 and reader.binary == 2
    await reader.socket.disconnect()
    layer, send = live.core.layer, live.core.layer.group_send

    async def without_v2(group, message):
        return await send(group, {k: v for k, v in message.items() if k != "compact"})

    layer.group_send = without_v2
    await live.frame()  # frame 2: no v2 form
    layer.group_send = send
    await live.frame()  # frame 3, framed while no v2 socket was in this process
    for _ in range(2):
        await receive(watcher)
    again = await compact(f"{path}?resume=1")
    again.athletes, again.race, again.frame = reader.athletes, reader.race, 1
    assert [(await again.next())["frame"] for _ in range(2)] == [2, 3]
    assert again.binary == 1  # frame 2 as JSON, frame 3 in v2
    hub = await race_hub.race_hub(live.race.slug)
    assert again.athletes == hub.athletes
    await watcher.disconnect()
    await again.socket.disconnect()


async def test_without_the_subprotocol_the_socket_speaks_json_unchanged():
    live = await Live.start()
    communicator = WebsocketCommunicator(
        application, f"/ws/races/{live.race.slug}/", subprotocols=["something.else"]
    )
    connected, subprotocol = await communicator.connect(timeout=5)
    assert connected and subprotocol is None
    assert (await receive(communicator))["type"] == "snapshot"
    await communicator.disconnect()
