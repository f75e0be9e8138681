"""The server on the Redis journal (``SIGNALING_JOURNAL=redis``), over real sockets against a
real ``redis-server``: rooms, resume from the Redis window, and Redis failing under it.

What a Redis outage must look like from outside: the client whose message could not be
journaled gets ``unavailable`` (no frame is relayed), the room's members are closed with
``4002`` once the room cannot be reloaded, ``/readyz`` turns 503, the log says so in a
few lines without a traceback; once Redis is back, readiness returns without traffic and
new rooms work.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest

from signaling.core import commands as c
from signaling.journal.redis import RedisJournal
from signaling.rooms.roomids import RoomIds
from signaling.transport.server import Server
from tests.integration.conftest import Make, StartServer
from tests.support.http import ahttp_get
from tests.support.redis import RedisServer
from tests.support.waiting import GUARD_S, eventually


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


async def redis_server(start_server: StartServer, redis: RedisServer, **kw: object) -> Server:
    server = await start_server(journal_backend="redis", redis_url=redis.url, **kw)
    assert server.hub.journal.backend == "redis"
    return server


async def ready(server: Server) -> int:
    return (await ahttp_get(f"http://127.0.0.1:{server.port}/readyz"))[0]


async def readiness_becomes(server: Server, status: int) -> None:
    """Poll /readyz (no notification exists) until it answers ``status``; the deadline
    is a failure guard only."""
    seen: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD_S
    while loop.time() < deadline:
        seen.append(await ready(server))
        if seen[-1] == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"/readyz never answered {status}: {seen[-5:]}")


async def test_rooms_relay_and_resume_through_redis(
    start_server: StartServer, redis: RedisServer, clients: Make
) -> None:
    server = await redis_server(start_server, redis)
    a, b = await clients(v2=True, srv=server), await clients(v2=True, srv=server)
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv_type("peer_joined")
    for n in range(40):  # over snapshot_every: snapshots and trims happen in Redis
        await a.send({"type": "signal", "payload": {"n": n}})
        assert (await b.recv_type("signal"))["payload"] == {"n": n}
    await b.send({"type": "signal", "payload": "back"})
    assert (await a.recv_type("signal"))["payload"] == "back"
    # b drops and resumes: the missed signals come from the Redis stream.
    seq, token, peer = b.seq, b.token, b.my_id
    b.drop()
    await a.send({"type": "signal", "payload": "while away"})
    journal = server.hub.journal
    c = await clients(v2=True, srv=server)
    await c.send(
        {"type": "resume", "roomId": room, "peerId": peer, "resumeToken": token, "lastSeq": seq}
    )
    assert (await c.recv_type("resumed"))["myId"] == peer
    assert (await c.recv_type("signal"))["payload"] == "while away"
    snapshot, after = await journal.load(room)
    assert snapshot.seq + len(after) >= seq


async def test_a_redis_outage_is_unavailable_then_not_ready_then_recovers(
    start_server: StartServer,
    redis: RedisServer,
    clients: Make,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await redis_server(start_server, redis)
    server.hub.supervisor.backoff = (0.01, 0.1)
    a, b = await clients(v2=True, srv=server), await clients(v2=True, srv=server)
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv_type("peer_joined")
    assert await ready(server) == 200

    caplog.clear()
    redis.kill()
    await a.send({"type": "signal", "payload": "lost?"})
    error = await a.recv_type("error")
    assert error["code"] == "unavailable", error
    # The room cannot be reloaded: both members are told and closed with 4002.
    assert (await a.closed())[0] == 4002
    assert (await b.closed())[0] == 4002
    assert "lost?" not in "".join(b.received), "nothing unjournaled was relayed"
    await readiness_becomes(server, 503)
    records = [r for r in caplog.records if r.name.startswith("signaling")]
    assert records, "the outage is logged"
    assert not [r for r in records if r.exc_info], "no traceback for an unreachable Redis"
    assert len(records) < 40, [r.getMessage() for r in records]

    redis.start()  # empty: the outage lost every stream
    await readiness_becomes(server, 200)
    c, d = await clients(srv=server), await clients(srv=server)
    room2 = (await c.create())["roomId"]
    await d.join(room2)
    await c.send({"type": "signal", "payload": "again"})
    assert (await d.recv_type("signal"))["payload"] == "again"


async def test_a_replica_whose_members_are_idle_is_not_ready_once_redis_is_gone(
    start_server: StartServer, redis: RedisServer, clients: Make
) -> None:
    """No message, no append: only the journal's follower sees Redis go. Its failures
    count for readiness (``Journal.on_failure``), so the instance leaves the load
    balancer without waiting for traffic to fail, and comes back once Redis answers."""
    server = await redis_server(start_server, redis)
    server.hub.supervisor.backoff = (0.01, 0.1)
    a, b = await clients(srv=server), await clients(srv=server)
    room = (await a.create())["roomId"]
    await b.join(room)  # the room is followed: the follower's XREAD is out
    assert await ready(server) == 200
    redis.kill()
    await readiness_becomes(server, 503)
    assert server.hub.metrics.journal_failures >= 1
    redis.start()
    await readiness_becomes(server, 200)


async def test_redis_down_at_start_up_is_not_ready_until_it_answers(
    start_server: StartServer, redis: RedisServer, clients: Make
) -> None:
    redis.stop()
    server = await redis_server(start_server, redis)
    server.hub.supervisor.backoff = (0.01, 0.1)
    assert await ready(server) == 503, "not ready before the journal ever answered"
    c = await clients(srv=server)
    await c.send({"type": "create"})
    assert (await c.recv_type("error"))["code"] == "unavailable"
    redis.start()
    await readiness_becomes(server, 200)
    await c.create()


async def test_a_new_rooms_id_held_by_another_replica_is_drawn_again(
    start_server: StartServer, redis: RedisServer, clients: Make
) -> None:
    """Both replicas draw the same ids (same seed): the second one's claim finds the id
    taken in Redis, so its room takes another before anyone hears of it, and its
    creator's room slot follows the new id."""
    one = await redis_server(start_server, redis)
    two = await redis_server(start_server, redis)
    for server in (one, two):
        server.hub.supervisor.ids = RoomIds(4, random.Random(7))
    a, b = await clients(srv=one), await clients(srv=two)
    room_a = (await a.create())["roomId"]
    room_b = (await b.create())["roomId"]
    assert room_a != room_b
    assert RoomIds(4, random.Random(7)).allocate() == room_a, "the ids really collided"
    assert list(two.hub.admission.room_owners) == [room_b]
    assert two.hub.supervisor.get(room_b) is not None
    c = await clients(srv=one)
    await c.join(room_b)  # the renamed room is the one Redis has
    await c.send({"type": "signal", "payload": "x"})
    assert (await b.recv_type("signal"))["payload"] == "x"


async def test_a_join_queued_behind_a_claim_that_lost_the_id_is_not_renamed_with_it(
    start_server: StartServer,
    redis: RedisServer,
    clients: Make,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A join for an id another replica holds can reach this replica while its own new
    room drew that id and is still claiming it: the join is queued on the new room's
    handle. When the claim fails and the new room takes another id, the join must not
    follow it into a stranger's room: its client is told to retry (``unavailable``) and
    the retry joins the room it asked for."""
    one = await redis_server(start_server, redis)
    two = await redis_server(start_server, redis)
    for server in (one, two):
        server.hub.supervisor.ids = RoomIds(4, random.Random(7))
    a = await clients(srv=one)
    room_a = (await a.create())["roomId"]
    gate = asyncio.Event()
    claim = two.hub.journal.create

    async def gated(room_id: str, initial: object) -> bool:
        await gate.wait()
        return await claim(room_id, initial)  # type: ignore[arg-type]

    monkeypatch.setattr(two.hub.journal, "create", gated)
    b, joiner = await clients(srv=two), await clients(srv=two)
    await b.send({"type": "create"})  # draws room_a too; its claim waits at the gate
    rooms = two.hub.supervisor.rooms
    await eventually(lambda: room_a in rooms, what="the new room on the collided id")
    await joiner.send({"type": "join", "roomId": room_a})
    await eventually(lambda: len(rooms[room_a].mailbox) == 2, what="the join queued")
    gate.set()
    room_b = (await b.recv_type("room_created"))["roomId"]
    assert room_b != room_a
    reply = await joiner.recv()
    assert reply["type"] == "error" and reply["code"] == "unavailable", reply
    assert (await joiner.join(room_a))["roomId"] == room_a
    await joiner.send({"type": "signal", "payload": "for a"})
    assert (await a.recv_type("signal"))["payload"] == "for a"


async def test_a_scanner_is_charged_for_ids_no_replica_has(
    start_server: StartServer, redis: RedisServer, clients: Make
) -> None:
    """A join of an id this replica does not hold is looked up in Redis; not found there,
    it costs the client's failed-join budget like on one process."""
    server = await redis_server(start_server, redis, failed_join_rate="3/10min")
    scanner = await clients(srv=server)
    replies = []
    for room_id in ("1234", "2345", "3456", "4567"):
        await scanner.send({"type": "join", "roomId": room_id})
        replies.append((await scanner.recv())["code"])
    assert replies == ["room_not_found"] * 3 + ["rate_limited"]


async def test_an_entry_overtaken_by_the_rooms_expiry_is_answered(
    start_server: StartServer, redis: RedisServer, clients: Make
) -> None:
    """Replica two has not heard yet that one expired the room when a join reaches it:
    two's append is overtaken, catching up finds ``RoomExpired``, and the join is
    answered ``room_not_found`` (not left unanswered in the retired room)."""
    one = await redis_server(start_server, redis)
    two = await redis_server(start_server, redis)
    a, b = await clients(v2=True, srv=one), await clients(v2=True, srv=two)
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv_type("peer_joined")
    two.hub.journal.unfollow(room)  # two stops hearing about the room by itself
    handle = one.hub.supervisor.get(room)
    assert handle is not None
    handle.mailbox.post((c.Expire(time.time() + 3600), None), force=True)
    assert (await a.recv_type("room_expired"))["roomId"] == room
    joiner = await clients(srv=two)
    await joiner.send({"type": "join", "roomId": room})
    assert (await joiner.recv())["code"] == "room_not_found"
    assert two.hub.metrics.journal_overtaken >= 1
    assert one.hub.metrics.journal_overtaken == 0
    assert (await b.recv_type("room_expired"))["roomId"] == room
    assert (await b.closed())[0] == 4000


async def test_a_store_that_went_back_is_reloaded_not_retried_forever(
    start_server: StartServer, redis: RedisServer, clients: Make
) -> None:
    """Redis lost the room's last write (restored from an older save; appendfsync everysec
    loses up to a second): the actor's next append is refused as stale, yet there is
    nothing to catch up. It must reload from what the store has and relay the signal,
    not retry the append forever, and the signal must not be lost on the way."""
    server = await redis_server(start_server, redis)
    a, b = await clients(v2=True, srv=server), await clients(v2=True, srv=server)
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv_type("peer_joined")
    await a.send({"type": "signal", "payload": "kept"})
    lost_seq = (await b.recv_type("signal"))["seq"] + 1
    journal = server.hub.journal
    assert isinstance(journal, RedisJournal)
    keys = journal.keys(room)
    saved = [await journal.redis.dump(key) for key in keys]  # the older save
    await a.send({"type": "signal", "payload": "lost"})
    assert (await b.recv_type("signal"))["seq"] == lost_seq
    for key, value in zip(keys, saved, strict=True):
        assert value is not None
        await journal.redis.restore(key, 0, value, replace=True)
    await a.send({"type": "signal", "payload": "after"})
    relayed = await b.recv_type("signal")
    assert (relayed["payload"], relayed["seq"]) == ("after", lost_seq)
    assert server.hub.metrics.actor_restarts == 1
