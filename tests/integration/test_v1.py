"""Protocol v1, the seed's, over real sockets: what existing clients see, byte for byte."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Awaitable, Callable

from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client

Make = Callable[..., Awaitable[Client]]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def test_create_join_signal_exact_frames(clients: Make) -> None:
    a, b = await clients(), await clients()
    await a.send({"type": "create"})
    created = await a.recv_text()
    match = re.fullmatch(
        r'\{"type":"room_created","roomId":"(\d{4})","myId":"([0-9a-f-]{36})"\}', created
    )
    assert match, created
    room_id, a_id = match.groups()
    assert UUID.fullmatch(a_id)
    await b.send({"type": "join", "roomId": room_id})
    joined = await b.recv_text()
    b_id = json.loads(joined)["myId"]
    assert joined == f'{{"type":"room_joined","roomId":"{room_id}","myId":"{b_id}"}}'
    assert b_id != a_id

    payload = json.dumps({"type": "dummy", "text": "hello from B"})
    await b.send({"type": "signal", "payload": payload})
    got = await a.recv_text()
    assert got == json.dumps(
        {"type": "signal", "senderId": b_id, "payload": payload}, separators=(",", ":")
    )
    await b.silent()  # the sender does not hear itself


async def test_object_payload_keeps_bytes_keys_and_order(clients: Make) -> None:
    a, b = await clients(), await clients()
    room = (await a.create())["roomId"]
    await b.join(room)
    raw = '{"sdp" : "v=0\\r\\n", "type":"offer","z":[1, 2.50, null], "a":"\\u00e9"}'
    await a.send('{"type":"signal","payload":' + raw + ',"roomId":"ignored"}')
    got = await b.recv_text()
    assert got == '{"type":"signal","senderId":"' + str(a.my_id) + '","payload":' + raw + "}"


async def test_unity_client_messages_are_accepted(clients: Make) -> None:
    unity_payload = '{"sdp":"","sdpType":"","candidate":"","sdpMid":"","sdpMLineIndex":-1}'
    a, b = await clients(), await clients()
    await a.send('{"type":"create","roomId":"","payload":' + unity_payload + "}")
    room = (await a.recv())["roomId"]
    await b.send('{"type":"join","roomId":"' + room + '","payload":' + unity_payload + "}")
    assert (await b.recv())["type"] == "room_joined"
    candidate = (
        '{"sdp":"","sdpType":"","candidate":"candidate:1 1 UDP 1 127.0.0.1 5000 typ host",'
        '"sdpMid":"0","sdpMLineIndex":0}'
    )
    await b.send('{"type":"signal","roomId":"' + room + '","payload":' + candidate + "}")
    assert (await a.recv_text()).endswith('"payload":' + candidate + "}")


async def test_join_unknown_room_is_the_seed_error_plus_a_code(clients: Make) -> None:
    a = await clients()
    await a.send({"type": "join", "roomId": "0000"})
    assert (
        await a.recv_text() == '{"type":"error","message":"Room not found","code":"room_not_found"}'
    )


async def test_joining_the_room_you_are_in_is_already_in_room_and_you_stay(
    clients: Make,
) -> None:
    a, b = await clients(), await clients()
    room = (await a.create())["roomId"]
    await b.join(room)
    for again in (a, b):  # the creator and a joiner
        await again.send({"type": "join", "roomId": room})
        assert await again.recv_text() == (
            '{"type":"error","message":"Already in this room","code":"already_in_room"}'
        )
    await b.send({"type": "signal", "payload": 1})  # still members, still relaying
    assert (await a.recv())["payload"] == 1
    await a.send({"type": "signal", "payload": 2})
    assert (await b.recv())["payload"] == 2
    await a.silent()


async def test_signal_goes_to_every_other_member(clients: Make) -> None:
    a, b, c = await clients(), await clients(), await clients()
    room = (await a.create())["roomId"]
    await b.join(room)
    await c.join(room)
    await a.send({"type": "signal", "payload": {"n": 1}})
    for peer in (b, c):
        msg = await peer.recv()
        assert msg == {"type": "signal", "senderId": a.my_id, "payload": {"n": 1}}
    await a.silent()


async def test_creating_or_joining_leaves_the_old_room(clients: Make) -> None:
    a, b = await clients(), await clients()
    first = (await a.create())["roomId"]
    await b.join(first)
    second = (await b.create())["roomId"]
    assert second != first
    await a.send({"type": "signal", "payload": 1})
    await b.silent()  # b left the first room
    await b.send({"type": "signal", "payload": 2})
    await a.silent()
    await a.join(second)
    await b.send({"type": "signal", "payload": 3})
    assert (await a.recv())["payload"] == 3


async def test_room_ids_are_random_and_exhaust_cleanly(
    start_server: StartServer, clients: Make
) -> None:
    # One client taking every id is the attack the per-address limits stop
    # (tests/integration/test_abuse.py); here they are off to see the id space itself.
    server = await start_server(create_rate="0", rooms_per_address=0, message_rate="0")
    a = await clients(srv=server)
    ids = []
    for _ in range(9000):
        await a.send('{"type":"create"}')
    for _ in range(9000):
        ids.append(int((await a.recv())["roomId"]))
    assert len(set(ids)) == 9000 and min(ids) >= 1000 and max(ids) <= 9999
    ascending = sum(1 for x, y in itertools.pairwise(ids) if y == x + 1)
    assert ascending < 100, "ids must not be sequential"
    await a.send('{"type":"create"}')
    reply = await a.recv()
    assert reply["type"] == "error" and reply["code"] == "rooms_exhausted"
    assert server.hub.metrics.rooms_live == 9000


async def test_disconnect_removes_a_v1_member(server: Server, clients: Make) -> None:
    a, b = await clients(), await clients()
    room = (await a.create())["roomId"]
    await b.join(room)
    await b.close()
    c = await clients()
    await c.join(room)
    actor = server.hub.supervisor.actor(room)
    assert actor is not None
    assert set(actor.state.members) == {a.my_id, c.my_id}
