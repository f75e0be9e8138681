"""A v2 client asks for an unguessable room id; a v1 client still joins it by id."""

from __future__ import annotations

import re

from signaling.transport.server import Server
from tests.support.client import Client


async def test_v2_unguessable_room_joined_by_a_v1_client(server: Server) -> None:
    owner = await Client.open(server, v2=True)
    await owner.send({"type": "create", "unguessable": True})
    created = await owner.recv_type("room_created")
    room = created["roomId"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", room), room  # 144 bits, URL-safe
    seed_client = await Client.open(server)  # v1, unchanged
    joined = await seed_client.join(room)
    assert set(joined) == {"type", "roomId", "myId"}
    await seed_client.send({"type": "signal", "payload": {"sdp": "offer"}})
    assert (await owner.expect("signal"))["payload"] == {"sdp": "offer"}
    await owner.send({"type": "signal", "payload": "answer"})
    assert (await seed_client.recv())["payload"] == "answer"


async def test_v1_create_keeps_the_seed_ids_and_ignores_the_field(server: Server) -> None:
    c = await Client.open(server)
    await c.send({"type": "create", "unguessable": True})
    assert re.fullmatch(r"\d{4}", (await c.recv_type("room_created"))["roomId"])
    v2 = await Client.open(server, v2=True)
    await v2.send({"type": "create"})
    assert re.fullmatch(r"\d{4}", (await v2.recv_type("room_created"))["roomId"])
    await v2.send({"type": "create", "unguessable": "yes"})
    assert (await v2.recv())["code"] == "bad_message"
