"""Rooms across replicas: two ``python -m signaling`` processes sharing one real Redis
(``SIGNALING_JOURNAL=redis``), clients on either, each check made from the clients' side.

A room created on one replica is joined by id on the other; signals cross both ways
exactly once and in order (v2 ``seq`` strictly increasing); joins, leaves and expiry
reach members on both; a resume on the other replica replays what was missed; one free
seat raced for from both replicas has exactly one winner; an id no replica created is
``room_not_found`` on either.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.support.client import Client, share_room, signals_from
from tests.support.http import http_get, metric_value
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, spawn_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


def replica_env(redis: RedisServer, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "SIGNALING_JOURNAL": "redis",
        "SIGNALING_REDIS_URL": redis.url,
        "SIGNALING_REDIS_PREFIX": prefix,
        "SIGNALING_DEMO_PAGE": "false",
        **extra,
    }


@pytest.fixture(scope="module")
def pair(redis: RedisServer) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = replica_env(redis, f"pair-{uuid.uuid4().hex[:6]}", SIGNALING_MAX_PEERS_PER_ROOM="2")
    with ExitStack() as stack:
        a = stack.enter_context(spawn_server(env))
        b = stack.enter_context(spawn_server(env))
        yield a, b


@pytest.fixture
async def clients() -> AsyncIterator[Any]:
    opened: list[Client] = []

    async def make(server: ServerProcess, v2: bool = True, name: str = "c") -> Client:
        client = await Client.open(server, v2, name=name)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.ws.close()


async def test_a_room_spans_two_replicas_exactly_once_and_in_order(
    pair: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    a_srv, b_srv = pair
    a = await clients(a_srv, name="a")
    b = await clients(b_srv, name="b")
    room = (await a.create())["roomId"]
    joined = await b.join(room)
    assert joined["peers"] == [a.my_id], "the joiner on B sees the member on A"
    assert (await a.recv_type("peer_joined"))["peerId"] == b.my_id, "A hears B's join"

    n = 150

    async def send(client: Client, tag: str) -> None:
        for i in range(n):
            await client.send({"type": "signal", "payload": {tag: i}})

    got_b, got_a, _, _ = await asyncio.gather(
        signals_from(b, a.my_id or "", n),
        signals_from(a, b.my_id or "", n),
        send(a, "a"),
        send(b, "b"),
    )
    assert got_b == [{"a": i} for i in range(n)]
    assert got_a == [{"b": i} for i in range(n)]
    for srv in pair:  # each replica delivered the other's events: it counts them
        text = http_get(srv.metrics_url)[1]
        assert (metric_value(text, "signaling_journal_followed_events_total") or 0) >= n
    # Exactly once: after a barrier that follows everything, nothing more arrived.
    await a.send({"type": "signal", "payload": "barrier"})
    assert await signals_from(b, a.my_id or "", 1) == ["barrier"]
    assert sum('"signal"' in m for m in b.received) == n + 1

    await b.send({"type": "leave"})
    assert (await b.recv_type("left"))["roomId"] == room
    left = await a.recv_type("peer_left")
    assert (left["peerId"], left["reason"]) == (b.my_id, "left")


async def test_seed_clients_share_a_room_across_replicas(
    pair: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    a = await clients(pair[0], v2=False, name="v1a")
    b = await clients(pair[1], v2=False, name="v1b")
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.send({"type": "signal", "payload": {"sdp": "offer"}})
    assert (await b.recv_type("signal")) == {
        "type": "signal",
        "senderId": a.my_id,
        "payload": {"sdp": "offer"},
    }
    await b.send({"type": "signal", "payload": {"sdp": "answer"}})
    assert (await a.recv_type("signal"))["payload"] == {"sdp": "answer"}


async def test_one_free_seat_raced_for_from_both_replicas_has_one_winner(
    pair: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    a_srv, b_srv = pair
    for round_ in range(6):
        owner = await clients(a_srv if round_ % 2 else b_srv, name=f"owner{round_}")
        room = (await owner.create())["roomId"]
        x = await clients(a_srv, name=f"x{round_}")
        y = await clients(b_srv, name=f"y{round_}")
        join = {"type": "join", "roomId": room}
        await asyncio.gather(x.send(join), y.send(join))
        replies = await asyncio.gather(x.recv(), y.recv())
        kinds = sorted(r["type"] if r["type"] != "error" else r["code"] for r in replies)
        assert kinds == ["room_full", "room_joined"], replies
        winner = x if replies[0]["type"] == "room_joined" else y
        assert (await owner.recv_type("peer_joined"))["peerId"] == replies[0 if winner is x else 1][
            "myId"
        ]
        await owner.send({"type": "signal", "payload": round_})
        assert (await winner.recv_type("signal"))["payload"] == round_


async def test_an_id_no_replica_created_is_not_found_on_either(
    pair: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    for srv in pair:
        c = await clients(srv)
        await c.send({"type": "join", "roomId": "9999"})
        reply = await c.recv()
        if reply.get("code") != "room_not_found":  # 9999 happened to be live: another id
            await c.send({"type": "join", "roomId": "1000"})
            reply = await c.recv()
        assert reply["type"] == "error" and reply["code"] == "room_not_found", reply


async def test_a_resume_on_the_other_replica_replays_what_was_missed(
    pair: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    a_srv, b_srv = pair
    a = await clients(a_srv, name="a")
    b = await clients(b_srv, name="b")
    room = await share_room(a, b)
    await a.send({"type": "signal", "payload": "before"})
    assert (await b.recv_type("signal"))["payload"] == "before"
    seq, token, peer = b.seq, b.token, b.my_id
    await b.ws.close()  # v2: detached, resumable
    await a.send({"type": "signal", "payload": "missed 1"})
    await a.send({"type": "signal", "payload": "missed 2"})
    b2 = await clients(a_srv, name="b2")  # comes back through the other replica
    await b2.send(
        {"type": "resume", "roomId": room, "peerId": peer, "resumeToken": token, "lastSeq": seq}
    )
    assert (await b2.recv_type("resumed"))["myId"] == peer
    assert await signals_from(b2, a.my_id or "", 2) == ["missed 1", "missed 2"]
    await b2.send({"type": "signal", "payload": "back"})
    assert (await a.recv_type("signal"))["payload"] == "back"


async def test_expiry_reaches_members_on_both_replicas(redis: RedisServer, clients: Any) -> None:
    env = replica_env(redis, f"exp-{uuid.uuid4().hex[:6]}", ROOM_TIMEOUT_MS="1500")
    with spawn_server(env) as a_srv, spawn_server(env) as b_srv:
        a = await clients(a_srv, name="a")
        b = await clients(b_srv, name="b")
        room = await share_room(a, b)
        for client in (a, b):
            assert (await client.recv_type("room_expired"))["roomId"] == room
            assert (await client.closed())[0] == 4000
        c = await clients(b_srv, name="c")
        await c.send({"type": "join", "roomId": room})
        assert (await c.recv())["code"] == "room_not_found"
        await c.close()


async def test_a_replica_that_slept_through_the_expiry_still_sees_it(
    redis: RedisServer, clients: Any
) -> None:
    """B is frozen while A expires the room; woken, B's own expiry timer is overdue and
    races to append its own Expire. B's member must still get ``room_expired`` and
    4000, not ``unavailable`` and 4002 (the expired stream must still be there to say so)."""
    env = replica_env(redis, f"exp2-{uuid.uuid4().hex[:6]}", ROOM_TIMEOUT_MS="1000")
    with spawn_server(env) as a_srv, spawn_server(env) as b_srv:
        a = await clients(a_srv, name="a")
        b = await clients(b_srv, name="b")
        room = await share_room(a, b)
        b_srv.proc.send_signal(signal.SIGSTOP)
        try:
            assert (await a.recv_type("room_expired"))["roomId"] == room
        finally:
            b_srv.proc.send_signal(signal.SIGCONT)
        assert (await b.recv_type("room_expired"))["roomId"] == room
        assert (await b.closed())[0] == 4000


async def test_a_replica_leaving_ends_no_room_its_clients_resume_on_another(
    redis: RedisServer, clients: Any
) -> None:
    """A rolling update: the replica holding both members of a room drains (SIGTERM,
    1001); the room stays in Redis, both v2 members resume through the other replica,
    get what was said meanwhile, and talk again."""
    env = replica_env(redis, f"roll-{uuid.uuid4().hex[:6]}")
    with spawn_server(env) as b_srv:
        with spawn_server(env) as a_srv:
            a = await clients(a_srv, name="a")
            b = await clients(a_srv, name="b")
            room = await share_room(a, b)
            a_srv.proc.send_signal(signal.SIGTERM)  # the clients answer the close meanwhile
            for client in (a, b):
                assert (await client.closed())[0] == 1001
            assert await asyncio.to_thread(a_srv.proc.wait, 15) == 0
        a2 = await clients(b_srv, name="a2")
        await a2.send(a.resume_request(room))
        assert (await a2.recv_type("resumed"))["myId"] == a.my_id
        await a2.send({"type": "signal", "payload": "while b was away"})
        b2 = await clients(b_srv, name="b2")
        await b2.send(b.resume_request(room))
        assert (await b2.recv_type("resumed"))["myId"] == b.my_id
        assert await signals_from(b2, a.my_id or "", 1) == ["while b was away"]
        await b2.send({"type": "signal", "payload": "hello again"})
        assert await signals_from(a2, b.my_id or "", 1) == ["hello again"]
        for client in (a2, b2):  # before the replica stops: a blocked loop answers no close
            await client.close()


async def test_the_last_member_leaving_a_replica_ends_nothing_for_the_others(
    pair: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    """The creator's replica stops serving the room when its last member leaves; the room
    lives on for the member on the other replica, and a newcomer can join it again
    through the first."""
    a_srv, b_srv = pair
    a = await clients(a_srv, name="a")
    b = await clients(b_srv, name="b")
    room = await share_room(a, b)
    await a.send({"type": "leave"})
    await a.recv_type("left")
    assert (await b.recv_type("peer_left"))["peerId"] == a.my_id
    c = await clients(a_srv, name="c")
    joined = await c.join(room)
    assert joined["peers"] == [b.my_id]
    assert (await b.recv_type("peer_joined"))["peerId"] == c.my_id
    await b.send({"type": "signal", "payload": "still here"})
    assert await signals_from(c, b.my_id or "", 1) == ["still here"]


async def test_a_stale_disconnect_never_detaches_a_peer_resumed_elsewhere(
    pair: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    """b's socket on B dies while B is frozen; b resumes through A at once. When B runs
    again it learns both that the old socket is gone and that b resumed on A, in either
    order: the old socket's disconnect must not detach b's new socket."""
    a_srv, b_srv = pair
    a = await clients(a_srv, name="a")
    b = await clients(b_srv, name="b")
    room = await share_room(a, b)
    b_srv.proc.send_signal(signal.SIGSTOP)
    try:
        b.drop()
        b2 = await clients(a_srv, name="b2")
        await b2.send(b.resume_request(room))
        assert (await b2.recv_type("resumed"))["myId"] == b.my_id
    finally:
        b_srv.proc.send_signal(signal.SIGCONT)
    # A barrier through B's room actor, behind the dead socket's disconnect: a join
    # (the room of two is full: b kept its seat). A's next append then follows whatever
    # B committed for that disconnect (or is overtaken by it and catches up first).
    c = await clients(b_srv, name="c")
    await c.send({"type": "join", "roomId": room})
    assert (await c.recv())["code"] == "room_full"
    await a.send({"type": "signal", "payload": "still attached?"})
    assert await signals_from(b2, a.my_id or "", 1) == ["still attached?"]
    assert not [m for m in b2.received if '"peer_left"' in m or '"left"' in m]


async def test_three_replicas_one_room_agree_on_one_order(redis: RedisServer, clients: Any) -> None:
    """Six members on three replicas all send at once. Every member receives every other
    member's signals exactly once, each sender's in its sending order, and all members
    see the same history: a given seq is the same signal for everyone."""
    env = replica_env(
        redis,
        f"three-{uuid.uuid4().hex[:6]}",
        SIGNALING_MESSAGE_RATE="0",
        SIGNALING_BYTE_RATE="0",
    )
    per_sender = 200
    with spawn_server(env) as s1, spawn_server(env) as s2, spawn_server(env) as s3:
        servers = [s1, s2, s3]
        members = [await clients(servers[i % 3], name=f"m{i}") for i in range(6)]
        room = (await members[0].create())["roomId"]
        for member in members[1:]:
            await member.join(room)
        # Everyone has seen the last join: the room is complete for all before any signal.
        for member in members[:-1]:
            while (await member.recv_type("peer_joined"))["peerId"] != members[-1].my_id:
                pass

        async def send(i: int, member: Client) -> None:
            for n in range(per_sender):
                await member.send({"type": "signal", "payload": [i, n]})

        async def receive(member: Client) -> dict[int, list[int]]:
            want = per_sender * (len(members) - 1)
            seen: dict[int, list[int]] = {}
            while sum(len(v) for v in seen.values()) < want:
                msg = await member.recv_type("signal")
                sender, n = msg["payload"]
                seen.setdefault(sender, []).append(n)
                history.setdefault(msg["seq"], set()).add((sender, n))
            return seen

        history: dict[int, set[tuple[int, int]]] = {}
        receiving = asyncio.gather(*(receive(m) for m in members))
        await asyncio.gather(receiving, *(send(i, m) for i, m in enumerate(members)))
        for i, seen in enumerate(receiving.result()):
            assert sorted(seen) == [j for j in range(len(members)) if j != i]
            for sender, ns in seen.items():
                assert ns == list(range(per_sender)), (i, sender, ns[:10])
        assert all(len(signals) == 1 for signals in history.values()), "one seq, one signal"
        assert len(history) == per_sender * len(members)
        for member in members:
            await member.close()
