"""The attacks of issue 9, played from distinct loopback addresses against the defaults.

Every client binds its own source address (127.0.0.2 is the attacker, 127.0.0.3 and up
are honest users), so the per-address limits see what they would see on the internet:
one abusive address is limited while the others are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signaling.config import Settings, parse_rate
from signaling.core import commands
from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.raw import RawClient
from tests.support.waiting import eventually

ATTACKER = "127.0.0.2"


async def client(server: Server, address: str, v2: bool = False, **kw: Any) -> Client:
    return await Client.open(server, v2, name=address, local_addr=(address, 0), **kw)


async def replies(c: Client, n: int) -> list[dict[str, Any]]:
    return [await c.recv() for _ in range(n)]


async def test_create_flood_cannot_take_the_id_space(start_server: StartServer) -> None:
    """Attack 1: one connection pipelining creates took all 9000 ids in 1.24 s."""
    server = await start_server()
    attacker = await client(server, ATTACKER)
    for _ in range(500):
        await attacker.send('{"type":"create"}')
    got = await replies(attacker, 500)
    created = [r for r in got if r["type"] == "room_created"]
    limited = [r for r in got if r.get("code") == "rate_limited"]
    # The defaults: whichever of rooms held and the creation burst runs out first.
    defaults = Settings()
    allowed = min(defaults.rooms_per_address, int(parse_rate(defaults.create_rate)[1]))
    assert 0 < allowed <= 100, "the defaults must stop a create flood early"
    assert len(created) == allowed, "rooms held / creations per address"
    assert len(limited) == 500 - allowed and all(r["retryAfterMs"] > 0 for r in limited)
    # More connections from the same address do not help: the limit is per address.
    second = await client(server, ATTACKER)
    await second.send('{"type":"create"}')
    assert (await second.recv())["code"] == "rate_limited"
    assert server.hub.supervisor.ids.capacity - len(server.hub.supervisor.ids) >= 8900
    # Everybody else is served.
    honest = await client(server, "127.0.0.3")
    room = (await honest.create())["roomId"]
    guest = await client(server, "127.0.0.4")
    await guest.join(room)
    limited_total = server.hub.metrics.rate_limited
    assert limited_total["rooms"] + limited_total["creates"] >= 500 - allowed + 1


async def test_rooms_held_are_given_back_when_they_expire(start_server: StartServer) -> None:
    server = await start_server(rooms_per_address=2, room_timeout_ms=200)
    c = await client(server, ATTACKER)
    await c.create()
    await c.create()
    await c.send('{"type":"create"}')
    assert (await c.recv())["code"] == "rate_limited"
    await c.send('{"type":"leave"}')  # v1 has no leave; close to leave both rooms
    await c.close()
    await eventually(lambda: server.hub.metrics.rooms_live == 0, what="rooms expired")
    again = await client(server, ATTACKER)
    await again.create()


async def test_join_scan_finds_nothing(start_server: StartServer) -> None:
    """Attack 2: 45,000 joins/s found every live room in 0.2 s."""
    server = await start_server()
    victim = await client(server, "127.0.0.3")
    room = (await victim.create())["roomId"]
    scanner = await client(server, ATTACKER)
    ids = [*[str(n) for n in range(1000, 10000) if str(n) != room][:300], room]
    for room_id in ids:
        await scanner.send(json.dumps({"type": "join", "roomId": room_id}))
    got = await replies(scanner, len(ids))
    assert not [r for r in got if r["type"] == "room_joined"], "the scan found the room"
    codes = [r.get("code") for r in got]
    assert codes.count("room_not_found") == 20  # SIGNALING_FAILED_JOIN_RATE burst
    assert codes.count("rate_limited") == len(ids) - 20
    # The retry hint says how slow scanning now is: one id per 30 s.
    assert 25_000 <= got[-1]["retryAfterMs"] <= 30_000
    await victim.silent(0.1)  # nobody joined the victim's room
    # An honest user with the room id is served at once.
    friend = await client(server, "127.0.0.4")
    await friend.join(room)
    assert server.hub.metrics.rate_limited["failed_joins"] == len(ids) - 20


async def test_resume_brute_force_is_slowed(start_server: StartServer) -> None:
    """Attack 3: 21,500 resume attempts per second per connection."""
    server = await start_server()
    victim = await client(server, "127.0.0.3", v2=True)
    reply = await victim.create()
    forger = await client(server, ATTACKER, v2=True)
    attempt = {
        "type": "resume",
        "roomId": reply["roomId"],
        "peerId": reply["myId"],
        "lastSeq": 0,
    }
    for n in range(200):
        await forger.send({**attempt, "resumeToken": f"guess-{n}"})
    codes = [r.get("code") for r in await replies(forger, 200)]
    assert codes.count("resume_failed") == 20
    assert codes.count("rate_limited") == 180
    # The real owner, from elsewhere, still resumes.
    victim.drop()
    owner = await client(server, "127.0.0.4", v2=True)
    await owner.send({**attempt, "resumeToken": reply["resumeToken"]})
    assert (await owner.expect("resumed"))["type"] == "resumed"


async def test_signal_flood_is_limited_then_closed_1008(start_server: StartServer) -> None:
    """20,000 signals/s from one connection were relayed in full."""
    server = await start_server()
    flooder = await client(server, ATTACKER, max_queue=None)
    room = (await flooder.create())["roomId"]
    member = await client(server, "127.0.0.3", max_queue=None)
    await member.join(room)
    other_a = await client(server, "127.0.0.4")
    other_room = (await other_a.create())["roomId"]
    other_b = await client(server, "127.0.0.5")
    await other_b.join(other_room)

    payload = {"type": "candidate", "candidate": "candidate:1 1 udp 2122260223 " + "x" * 220}
    frame = json.dumps({"type": "signal", "payload": payload})
    sent = 0
    try:
        for _ in range(20_000):
            await flooder.send(frame)
            sent += 1
    except ConnectionClosed:
        pass
    answers = await flooder.drain(quiet=2.0)
    code, _ = await flooder.closed()
    assert code == 1008
    limited = [m for m in answers if m.get("code") == "rate_limited"]
    assert len(limited) >= 200 and all(m["retryAfterMs"] >= 1 for m in limited)
    # What the member got is bounded by the burst (plus the refill while it lasted),
    # never the flood; and every relayed signal is whole.
    relayed = await member.drain(quiet=0.5)
    assert 4000 <= len(relayed) < 8000, len(relayed)
    assert server.hub.metrics.rejected["abuse"] == 1
    assert server.hub.metrics.rate_limited["messages"] >= 200
    # The other room is untouched.
    await other_a.send({"type": "signal", "payload": "fine"})
    assert (await other_b.recv())["payload"] == "fine"


async def test_an_honest_ice_burst_is_never_limited(start_server: StartServer) -> None:
    """A browser sends tens of candidates at once, several times: no limit is touched."""
    server = await start_server()
    a = await client(server, "127.0.0.3")
    room = (await a.create())["roomId"]
    b = await client(server, "127.0.0.4")
    await b.join(room)
    for burst in range(5):
        for n in range(60):
            await a.send({"type": "signal", "payload": {"candidate": f"c{burst}-{n}"}})
        got = [(await b.recv())["payload"]["candidate"] for _ in range(60)]
        assert got == [f"c{burst}-{n}" for n in range(60)]
    assert sum(server.hub.metrics.rate_limited.values()) == 0


async def test_connections_and_handshakes_per_address(start_server: StartServer) -> None:
    server = await start_server(connections_per_address=3)
    held = [await client(server, ATTACKER) for _ in range(3)]
    with pytest.raises(InvalidStatus) as info:
        await client(server, ATTACKER)
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"]
    await client(server, "127.0.0.3")  # another address is served
    await held[0].close()
    await eventually(lambda: server.hub.admission.addresses.connections_held(ATTACKER) == 2)
    await client(server, ATTACKER)

    fast = await start_server(handshake_rate="3/min")
    for _ in range(3):
        await client(fast, ATTACKER)
    with pytest.raises(InvalidStatus) as info:
        await client(fast, ATTACKER)
    assert info.value.response.status_code == 429
    assert 1 <= int(info.value.response.headers["Retry-After"]) <= 20
    await client(fast, "127.0.0.3")
    assert fast.hub.metrics.rejected["handshake_rate"] == 1


async def test_server_wide_cap_answers_503_and_health_still_answers(
    start_server: StartServer,
) -> None:
    server = await start_server(max_connections=2)
    await client(server, "127.0.0.3")
    await client(server, "127.0.0.4")
    with pytest.raises(InvalidStatus) as info:
        await client(server, "127.0.0.5")
    assert info.value.response.status_code == 503
    assert server.hub.metrics.rejected["server_full"] == 1
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_connection_that_never_enters_a_room_is_closed(start_server: StartServer) -> None:
    server = await start_server(roomless_timeout=1.0, ping_interval=0.2, ping_timeout=5)
    idle = await client(server, ATTACKER)
    busy = await client(server, "127.0.0.3")
    await busy.create()
    code, reason = await idle.closed()
    assert (code, reason) == (1008, "no room entered")
    await busy.send({"type": "signal", "payload": "still here"})  # in a room: kept
    await busy.silent(0.1)
    assert not busy.ws.close_code
    assert server.hub.metrics.rejected["roomless_timeout"] >= 1


async def test_origin_allow_list(start_server: StartServer) -> None:
    server = await start_server(allowed_origins="https://app.example")
    with pytest.raises(InvalidStatus) as info:
        await client(server, ATTACKER, origin="https://evil.example")
    assert info.value.response.status_code == 403
    await client(server, "127.0.0.3", origin="https://app.example")
    await client(server, "127.0.0.4")  # no Origin: not a browser
    assert server.hub.metrics.rejected["origin"] == 1


async def test_forwarded_address_counts_only_from_a_trusted_proxy(
    start_server: StartServer,
) -> None:
    proxy = "127.0.0.9"
    server = await start_server(trusted_proxies=f"{proxy}/32", connections_per_address=1)

    async def via(address: str, forwarded_for: str) -> Client:
        return await client(server, address, additional_headers={"X-Forwarded-For": forwarded_for})

    await via(proxy, "198.51.100.7")
    await via(proxy, "198.51.100.8")  # two users behind one proxy: two addresses
    with pytest.raises(InvalidStatus):
        await via(proxy, "198.51.100.7")
    # From an untrusted peer the header is ignored: the socket address counts.
    await via(ATTACKER, "198.51.100.50")
    with pytest.raises(InvalidStatus):
        await via(ATTACKER, "198.51.100.51")


async def test_a_flooding_room_delays_another_room_by_one_batch_at_most(
    start_server: StartServer,
) -> None:
    """Fairness: a room actor yields after SIGNALING_ROOM_BATCH messages, so a backlog
    of thousands in one room cannot hold another room's message behind all of them."""
    batch = 64
    server = await start_server(room_batch=batch, mailbox_size=10_000)
    hub = server.hub
    flooder = await client(server, ATTACKER)
    room_a = (await flooder.create())["roomId"]
    member_a = await client(server, "127.0.0.3", max_queue=None)
    await member_a.join(room_a)
    sender_b = await client(server, "127.0.0.4")
    room_b = (await sender_b.create())["roomId"]
    member_b = await client(server, "127.0.0.5")
    await member_b.join(room_b)
    conns = {c.peer_id: c for c in hub.connections}
    b_conn = conns[member_b.my_id]  # type: ignore[index]
    a_conn = conns[flooder.my_id]  # type: ignore[index]

    # When room B's message reaches its recipient, how many of A's were delivered?
    seen: list[int] = []
    original = b_conn.write

    def record(frame: bytes) -> None:
        if b'"late"' in frame:
            seen.append(hub.metrics.signals_delivered)
        original(frame)

    b_conn.write = record  # type: ignore[method-assign]
    sender = conns[sender_b.my_id]  # type: ignore[index]
    base = hub.metrics.signals_delivered
    flood = 5000
    a_handle, b_handle = hub.supervisor.get(room_a), hub.supervisor.get(room_b)
    assert a_handle is not None and b_handle is not None
    for n in range(flood):  # one loop turn: the backlog a burst of sockets would leave
        signal = c_signal(a_conn.peer_id, f'{{"n":{n}}}')
        a_handle.mailbox.post((signal, a_conn))
    b_handle.mailbox.post((c_signal(sender.peer_id, '"late"'), sender))
    assert (await member_b.recv())["payload"] == "late"
    assert seen, "room B's message was delivered"
    delivered_a_first = seen[0] - base
    assert delivered_a_first <= 2 * batch, delivered_a_first
    await eventually(lambda: hub.metrics.signals_delivered - base == flood + 1)


def c_signal(peer_id: str, payload: str) -> commands.Signal:
    return commands.Signal(peer_id, payload, None, time.time())


async def test_a_ping_flood_is_limited_like_messages(start_server: StartServer) -> None:
    server = await start_server()
    flooder = await RawClient.open(server.port)
    for n in range(6000):
        flooder.protocol.send_ping(n.to_bytes(4, "big"))
    await flooder.flush()
    close = await flooder.close_frame()
    assert close.code == 1008
    assert server.hub.metrics.rate_limited["messages"] >= 200
    assert server.hub.metrics.rejected["abuse"] == 1
    flooder.close()


async def test_a_16_mb_burst_cannot_push_a_reading_member_out(start_server: StartServer) -> None:
    """A member reading continuously was cut as a slow consumer when another burst 16 MB:
    the byte limit refuses the burst at the sender instead."""
    server = await start_server()
    burster = await client(server, ATTACKER, max_queue=None)
    room = (await burster.create())["roomId"]
    reader = await client(server, "127.0.0.3", max_queue=None)
    await reader.join(room)
    chunk = json.dumps({"type": "signal", "payload": {"blob": "x" * 60_000}})
    with contextlib.suppress(ConnectionClosed):
        for _ in range(270):  # 16.2 MB
            await burster.send(chunk)
    await burster.drain(quiet=1.0)
    assert (await burster.closed())[0] == 1008
    got = await reader.drain(quiet=1.0)
    assert 30 <= len(got) < 100  # the 2 MiB burst and what refilled meanwhile
    assert reader.ws.close_code is None, "the reading member was not disconnected"
    assert server.hub.metrics.slow_consumers == 0
    assert server.hub.metrics.rate_limited["bytes"] >= 200
