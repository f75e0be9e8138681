"""Protocol v2 (subprotocol signaling.v2): membership events, seq, directed signals, resume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.rooms import detached

Make = Callable[..., Awaitable[Client]]


async def test_v2_replies_carry_peers_seq_and_token(clients: Make) -> None:
    a, b = await clients(v2=True), await clients(v2=True)
    created = await a.create()
    assert created["peers"] == [] and created["seq"] == 2 and len(created["resumeToken"]) >= 32
    assert a.ws.subprotocol == "signaling.v2"
    joined = await b.join(created["roomId"])
    assert joined["peers"] == [a.my_id] and joined["seq"] == 3
    assert joined["resumeToken"] != created["resumeToken"]
    assert await a.recv() == {"type": "peer_joined", "peerId": b.my_id, "seq": 3}
    await b.send({"type": "signal", "payload": {"sdp": "x"}})
    assert await a.recv() == {
        "type": "signal",
        "senderId": b.my_id,
        "payload": {"sdp": "x"},
        "seq": 4,
    }


async def test_directed_signal_and_unknown_target(clients: Make) -> None:
    a, b, c = await clients(v2=True), await clients(v2=True), await clients(v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    await c.join(room)
    await a.recv(), await a.recv(), await b.recv()  # peer_joined notices
    await a.send({"type": "signal", "to": c.my_id, "payload": "only-c"})
    assert (await c.recv())["payload"] == "only-c"
    await b.silent()
    await a.send({"type": "signal", "to": "nobody", "payload": 1})
    err = await a.recv()
    assert err["type"] == "error" and err["code"] == "peer_not_found"


async def test_mixed_room_v1_never_sees_v2_messages_or_fields(clients: Make) -> None:
    v1, v2 = await clients(), await clients(v2=True)
    room = (await v1.create())["roomId"]
    assert set(await v2.join(room)) == {"type", "roomId", "myId", "peers", "seq", "resumeToken"}
    await v2.send({"type": "signal", "payload": "hi"})
    assert await v1.recv() == {"type": "signal", "senderId": v2.my_id, "payload": "hi"}
    await v1.send({"type": "signal", "payload": "yo"})
    assert (await v2.recv())["seq"] > 0
    third = await clients(v2=True)
    await third.join(room)
    assert (await v2.recv())["type"] == "peer_joined"
    await third.send({"type": "leave"})
    assert await third.recv() == {"type": "left", "roomId": room}
    assert (await v2.recv())["type"] == "peer_left"
    await v1.silent()


async def test_leave_tells_the_others(clients: Make) -> None:
    a, b = await clients(v2=True), await clients(v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv()
    await b.send({"type": "leave"})
    assert await b.recv() == {"type": "left", "roomId": room}
    left = await a.recv()
    assert left == {"type": "peer_left", "peerId": b.my_id, "reason": "left", "seq": 4}
    await b.send({"type": "leave"})
    assert (await b.recv())["code"] == "not_in_room"


async def test_disconnect_keeps_the_place_for_the_grace_period(start_server: StartServer) -> None:
    """Two members vanish: the one who comes back within the grace period resumes its
    place, the other one's place is given up (peer_left) when its grace period ends."""
    server = await start_server(resume_grace_ms=1000)
    a, b, c = [await Client.open(server, True, name=n) for n in "abc"]
    room = (await a.create())["roomId"]
    await b.join(room)
    await c.join(room)
    assert [(await a.recv())["peerId"] for _ in range(2)] == [b.my_id, c.my_id]
    assert (await b.recv())["peerId"] == c.my_id
    await b.close()
    await c.close()
    await detached(server, room, b.my_id)
    await detached(server, room, c.my_id)

    b2 = await Client.open(server, True, name="b2")
    await b2.send(
        {
            "type": "resume",
            "roomId": room,
            "peerId": b.my_id,
            "resumeToken": b.token,
            "lastSeq": b.seq,
        }
    )
    assert (await b2.recv())["type"] == "resumed"  # b's place was kept
    for member in (a, b2):
        left = await member.recv()
        assert left["type"] == "peer_left" and left["peerId"] == c.my_id, left
        assert left["reason"] == "disconnected"
    await b2.send({"type": "signal", "payload": "back"})
    back = await a.recv()  # not a peer_left for b: b never lost its place
    assert back["type"] == "signal" and back["senderId"] == b.my_id, back
    await a.close()
    await b2.close()


async def drop(server: Server, room: str, client: Client) -> None:
    """Vanish like a phone changing networks (no close frame, just a dead TCP connection)
    and wait until the room has committed the detachment."""
    client.drop()
    await detached(server, room, client.my_id)


async def test_resume_replays_missed_messages_in_order_exactly_once(
    server: Server, clients: Make
) -> None:
    a, b, c = await clients(v2=True), await clients(v2=True), await clients(v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv()
    await a.send({"type": "signal", "payload": "before"})
    assert (await b.recv())["payload"] == "before"
    last_seen = b.seq
    await drop(server, room, b)
    for n in range(3):
        await a.send({"type": "signal", "payload": f"missed-{n}"})
    await c.join(room)  # a membership change while b is away
    assert (await a.recv())["type"] == "peer_joined"
    await a.send({"type": "signal", "to": b.my_id, "payload": "for-b"})
    await a.send({"type": "signal", "to": c.my_id, "payload": "not-for-b"})
    # a's signals are processed in order: once c has its own, "for-b" is in the journal.
    assert (await c.recv())["payload"] == "not-for-b"

    b2 = await clients(v2=True)
    await b2.send(
        {
            "type": "resume",
            "roomId": room,
            "peerId": b.my_id,
            "resumeToken": b.token,
            "lastSeq": last_seen,
        }
    )
    resumed = await b2.recv()
    assert resumed["type"] == "resumed" and resumed["myId"] == b.my_id
    assert set(resumed["peers"]) == {a.my_id, c.my_id}
    replay = [await b2.recv() for _ in range(5)]
    assert [m.get("payload", m["type"]) for m in replay] == [
        "missed-0",
        "missed-1",
        "missed-2",
        "peer_joined",
        "for-b",
    ]
    seqs = [m["seq"] for m in replay]
    assert seqs == sorted(seqs) and seqs[0] == last_seen + 2  # +1 is b's own detachment
    assert resumed["seq"] > seqs[-1]
    await b2.silent()
    await a.send({"type": "signal", "payload": "live"})
    live = await b2.recv()
    assert live["payload"] == "live" and live["seq"] > resumed["seq"]
    await b2.silent()
    await b2.send({"type": "signal", "payload": "back"})
    assert (await a.recv())["senderId"] == b.my_id
    assert server.hub.metrics.resumes == {"ok": 1, "failed": 0}


async def test_resume_takes_over_a_half_open_connection(clients: Make) -> None:
    a, b = await clients(v2=True), await clients(v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    b2 = await clients(v2=True)
    await b2.send(
        {
            "type": "resume",
            "roomId": room,
            "peerId": b.my_id,
            "resumeToken": b.token,
            "lastSeq": b.seq,
        }
    )
    assert (await b2.recv())["type"] == "resumed"
    await b.ws.wait_closed()
    assert b.ws.close_code == 4001
    await a.recv()  # peer_joined of b
    await a.silent()  # no peer_left: b is still there, on its new socket


async def test_resume_failures(start_server: StartServer) -> None:
    server = await start_server(journal_max_events=3)
    a, b = await Client.open(server, True), await Client.open(server, True)
    room = (await a.create())["roomId"]
    await b.join(room)
    await drop(server, room, b)
    for n in range(5):
        await a.send({"type": "signal", "payload": n})
    await a.send({"type": "signal", "to": "nobody", "payload": "barrier"})
    assert (await a.expect("error"))["code"] == "peer_not_found"  # after the 5: trimmed
    attempts = [
        {"roomId": room, "peerId": b.my_id, "resumeToken": "wrong", "lastSeq": 3},
        {"roomId": room, "peerId": "stranger", "resumeToken": b.token, "lastSeq": 3},
        {"roomId": "0000", "peerId": b.my_id, "resumeToken": b.token, "lastSeq": 3},
        {"roomId": room, "peerId": b.my_id, "resumeToken": b.token, "lastSeq": 3},  # trimmed
        {"roomId": room, "peerId": b.my_id, "resumeToken": b.token, "lastSeq": 99},
    ]
    for attempt in attempts:
        c = await Client.open(server, True)
        await c.send({"type": "resume", **attempt})
        err = await c.recv()
        assert err["type"] == "error" and err["code"] == "resume_failed", (attempt, err)
        await c.close()
    bad = await Client.open(server, True)
    await bad.send({"type": "resume", "roomId": room, "peerId": b.my_id, "lastSeq": "3"})
    assert (await bad.recv())["code"] == "bad_message"
    assert server.hub.metrics.resumes["failed"] == 5
    for client in (a, bad):
        await client.close()


async def test_v1_cannot_use_v2_message_types(clients: Make) -> None:
    a = await clients()
    await a.send({"type": "leave"})
    assert (await a.recv())["code"] == "unknown_type"
