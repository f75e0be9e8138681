"""Room lifecycle: inactivity expiry, actor crash and restart, health probes, log hygiene."""

from __future__ import annotations

import asyncio
import json
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Callable

import pytest
import websockets
from websockets.asyncio.client import connect

import signaling.rooms.actor
from signaling.core import commands as c
from signaling.core.room import Decision, RoomState
from signaling.core.room import decide as real_decide
from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.http import ahttp_get
from tests.support.raw import RawClient
from tests.support.rooms import detached
from tests.support.server import spawn_server
from tests.support.waiting import eventually

Make = Callable[..., Awaitable[Client]]


async def no_more_messages(client: Client) -> None:
    """The connection is closed and nothing was left unread before the close."""
    with pytest.raises(websockets.ConnectionClosed):
        data = await asyncio.wait_for(client.ws.recv(), 5)
        raise AssertionError(f"unexpected message: {data!r}")


# ---- expiry ------------------------------------------------------------------------------
# How long a room waits is the pure core's rule, tested with an injected clock
# (tests/unit/test_room.py). Here only order and causality are checked, never a duration.


async def test_idle_room_expires_v2_is_told_then_everyone_closed_4000(
    start_server: StartServer,
) -> None:
    server = await start_server(room_timeout_ms=300)
    v1, v2 = await Client.open(server), await Client.open(server, v2=True)
    room = (await v1.create())["roomId"]
    await v2.join(room)  # the last activity

    assert await v2.recv() == {"type": "room_expired", "roomId": room}
    assert await v2.closed() == (4000, "room expired")
    assert await v1.closed() == (4000, "room expired")
    await no_more_messages(v1)  # v1 has no room_expired message: just the close

    late = await Client.open(server)
    await late.send({"type": "join", "roomId": room})
    err = await late.recv()
    assert err["type"] == "error" and err["code"] == "room_not_found"
    metrics = server.hub.metrics
    assert metrics.rooms_expired == 1 and metrics.rooms_live == 0
    assert server.hub.supervisor.get(room) is None
    await late.close()


async def test_an_empty_room_lingers_joinable_until_it_expires(start_server: StartServer) -> None:
    server = await start_server(room_timeout_ms=300)
    supervisor = server.hub.supervisor
    a, b = await Client.open(server, v2=True), await Client.open(server)
    room = (await a.create())["roomId"]
    await a.send({"type": "leave"})
    assert await a.recv() == {"type": "left", "roomId": room}
    actor = supervisor.actor(room)
    assert actor is not None and dict(actor.state.members) == {}

    await b.join(room)  # empty, yet still there: joinable
    other = (await b.create())["roomId"]  # b leaves `room` by creating another one
    await eventually(lambda: (act := supervisor.actor(room)) is not None and not act.state.members)
    assert supervisor.get(room) is not None, "an empty room lingers"

    await eventually(lambda: supervisor.get(room) is None, what="expiry of the empty room")
    await a.send({"type": "join", "roomId": room})
    assert (await a.recv())["code"] == "room_not_found"

    # b's own room expires too, and closes b.
    assert await b.closed() == (4000, "room expired")
    assert supervisor.get(other) is None
    assert server.hub.metrics.rooms_expired == 2 and server.hub.metrics.rooms_live == 0
    await a.close()


async def test_activity_postpones_expiry(start_server: StartServer) -> None:
    """A busy room outlives an idle room created after it, and expires once it goes quiet.

    Causality instead of durations: the idle room's expiry proves a full timeout has
    passed since the busy room's creation, so the busy room is alive only because its
    activity postponed its expiry. (The timeout is long next to one in-process round
    trip, so the busy room never pauses for one, even on a loaded machine.)
    """
    # The ping-pong runs as fast as the server relays (16k signals a second compiled):
    # the per-connection message limit (4,000/s) must not refuse any of them.
    server = await start_server(room_timeout_ms=1000, message_rate="1000000/s")
    supervisor = server.hub.supervisor
    a, b = await Client.open(server, name="a"), await Client.open(server, v2=True, name="b")
    busy = (await a.create())["roomId"]
    await b.join(busy)
    idler = await Client.open(server, v2=True, name="idler")
    idle = (await idler.create())["roomId"]
    idle_expired = asyncio.ensure_future(idler.recv(timeout=30))

    n = 0
    while not idle_expired.done():  # ping-pong in the busy room until the idle one expires
        assert n < 1_000_000, "the idle room never expired"
        sender, receiver = (a, b) if n % 2 else (b, a)
        await sender.send({"type": "signal", "payload": n})
        msg = await receiver.recv()
        assert msg["type"] == "signal" and msg["payload"] == n, msg
        n += 1
    assert idle_expired.result() == {"type": "room_expired", "roomId": idle}
    assert a.ws.close_code is None and b.ws.close_code is None
    assert supervisor.get(busy) is not None and supervisor.get(idle) is None
    assert server.hub.metrics.rooms_expired == 1

    # Activity stops: now the busy room expires too.
    assert await b.recv() == {"type": "room_expired", "roomId": busy}
    assert await a.closed() == (4000, "room expired")
    assert await b.closed() == (4000, "room expired")
    assert server.hub.metrics.rooms_expired == 2


# ---- crash and restart ------------------------------------------------------------------


@pytest.fixture
def explosive_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The actor's ``decide`` raises for a signal whose payload is the JSON string "boom"."""
    if not str(signaling.rooms.actor.__file__).endswith(".py"):
        # mypyc binds the call at build time; the pure run (make test) covers the crash.
        pytest.skip("compiled actor: decide cannot be replaced at run time")

    def decide(state: RoomState, command: c.Command) -> Decision:
        if type(command) is c.Signal and command.payload == '"boom"':
            raise RuntimeError("boom")
        return real_decide(state, command)

    monkeypatch.setattr(signaling.rooms.actor, "decide", decide)


@pytest.mark.usefixtures("explosive_decide")
async def test_a_crashed_actor_restarts_from_the_journal(
    server: Server, clients: Make, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor = server.hub.supervisor
    a, b = await clients(v2=True), await clients(v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    assert (await a.recv())["type"] == "peer_joined"
    await a.send({"type": "signal", "payload": "before"})
    before = await b.recv()
    assert before["payload"] == "before"
    old_actor = supervisor.actor(room)
    assert old_actor is not None

    await a.send({"type": "signal", "payload": "boom"})
    err = await a.recv()
    assert err["type"] == "error" and err["code"] == "internal", err
    await b.silent()
    await eventually(lambda: supervisor.actor(room) is not old_actor)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(getattr(r, "room", None) == room for r in errors), errors
    assert server.hub.metrics.actor_restarts == 1
    new_actor = supervisor.actor(room)
    assert new_actor is not None and new_actor is not old_actor
    assert set(new_actor.state.members) == {a.my_id, b.my_id}
    assert new_actor.state.seq == before["seq"], "the failed message left no event"

    await a.send({"type": "signal", "payload": "after"})
    after = await b.recv()
    assert after["payload"] == "after" and after["seq"] == before["seq"] + 1
    await b.send({"type": "signal", "payload": "back"})
    back = await a.recv()
    assert back["senderId"] == b.my_id and back["seq"] == before["seq"] + 2
    assert server.hub.metrics.actor_restarts == 1
    assert supervisor.get(room) is not None


@pytest.mark.usefixtures("explosive_decide")
async def test_a_restart_keeps_the_grace_period_of_a_disconnected_peer(
    start_server: StartServer,
) -> None:
    server = await start_server(resume_grace_ms=400)
    a, b = await Client.open(server, v2=True), await Client.open(server, v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    assert (await a.recv())["type"] == "peer_joined"
    b.drop()  # b vanishes: detached, grace timer armed
    await detached(server, room, b.my_id)
    await a.send({"type": "signal", "payload": "boom"})  # the actor crashes and restarts
    assert (await a.recv())["code"] == "internal"
    left = await a.recv()
    assert left["type"] == "peer_left" and left["peerId"] == b.my_id
    assert left["reason"] == "disconnected"
    assert server.hub.metrics.actor_restarts == 1
    await a.close()


async def test_a_failed_join_or_resume_keeps_the_client_in_its_room(server: Server) -> None:
    a, b = await Client.open(server, v2=True), await Client.open(server, v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    assert (await a.recv())["type"] == "peer_joined"
    await b.send({"type": "join", "roomId": "0000"})
    assert (await b.recv())["code"] == "room_not_found"
    await b.send(
        {"type": "resume", "roomId": "0000", "peerId": "x", "resumeToken": "y", "lastSeq": 0}
    )
    assert (await b.recv())["code"] == "resume_failed"
    await a.silent()  # no peer_left: b never left
    await a.send({"type": "signal", "payload": "still together"})
    assert (await b.recv())["payload"] == "still together"
    await a.close()
    await b.close()


@pytest.mark.usefixtures("explosive_decide")
async def test_messages_behind_the_failing_one_are_processed_in_order(
    server: Server, clients: Make
) -> None:
    a = await RawClient.open(server.port, v2=True)
    try:
        b = await clients(v2=True)
        await a.send_many([json.dumps({"type": "create"})])
        room = (await a.next_text())["roomId"]
        joined = await b.join(room)
        assert (await a.next_text())["type"] == "peer_joined"

        # One TCP write, so one data_received: the three messages reach the mailbox as one batch.
        for payload in ("boom", "after-1", "after-2"):
            a.protocol.send_text(json.dumps({"type": "signal", "payload": payload}).encode())
        await a.loop.sock_sendall(a.sock, b"".join(a.protocol.data_to_send()))
        err = await a.next_text()
        assert err["type"] == "error" and err["code"] == "internal", err
        first, second = await b.recv(), await b.recv()
        assert (first["payload"], second["payload"]) == ("after-1", "after-2")
        assert (first["seq"], second["seq"]) == (joined["seq"] + 1, joined["seq"] + 2)
        await b.silent()
        assert server.hub.metrics.actor_restarts == 1
        depth = server.hub.metrics.mailbox_depth
        batches_of_3_or_more = sum(depth.counts[bisect_left(depth.bounds, 3) :])
        assert batches_of_3_or_more >= 1, "the three signals were one batch"
    finally:
        a.close()  # it never answers a close frame: do not leave it to the drain


# ---- health probes -----------------------------------------------------------------------


async def test_health_endpoints_on_the_websocket_port(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"

    async def get(path: str) -> tuple[int, str]:
        return await ahttp_get(base + path)

    assert await get("/healthz") == (200, "ok\n")
    assert (await get("/readyz"))[0] == 200
    assert (await get("/healthz?x=1")) == (200, "ok\n")
    assert (await get("/readyz?probe=kubelet"))[0] == 200
    assert (await get("/"))[0] == 200  # the demo page (SIGNALING_DEMO_PAGE)
    assert (await get("/anything-else"))[0] == 426
    # The same port still speaks WebSocket.
    async with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=3) as ws:
        await ws.send(json.dumps({"type": "create"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 3))["type"] == "room_created"


# ---- logs ----------------------------------------------------------------------------------

MARKER = "SECRET-SDP-a1b2c3"
IP = "192.0.2.55"
SDP = f"v=0\r\no=- 1 2 IN IP4 {IP}\r\ns={MARKER}\r\na=candidate:1 1 udp 1 {IP} 5000 typ host"


def test_logs_never_contain_payloads() -> None:
    env = {"SIGNALING_LOG_LEVEL": "debug", "SIGNALING_LOG_FORMAT": "json"}
    with spawn_server(env) as proc:
        asyncio.run(_payload_flows(proc.port))
        assert proc.terminate() == 0
        log = proc.log()
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines, "the server logged nothing at debug level"
    for line in lines:
        doc = json.loads(line)
        assert isinstance(doc, dict) and {"level", "msg", "ts"} <= doc.keys(), line
    assert any(json.loads(line)["level"] == "debug" for line in lines), "debug is on"
    assert MARKER not in log
    assert IP not in log


async def _next_signal(client: Client) -> object:
    """The next relayed payload, skipping membership notices."""
    while (msg := await client.recv())["type"] != "signal":
        assert msg["type"] in ("peer_joined", "peer_left"), msg
    return msg["payload"]


async def _payload_flows(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/"
    v2p: list[websockets.Subprotocol] = [websockets.Subprotocol("signaling.v2")]
    async with (
        connect(url) as w1,
        connect(url, subprotocols=v2p) as w2,
        connect(url, subprotocols=v2p) as w3,
        connect(url) as w4,
    ):
        v1, v2, bad, big = Client(w1, "v1"), Client(w2, "v2"), Client(w3, "bad"), Client(w4, "big")
        room = (await v1.create())["roomId"]
        await v2.join(room)
        await v1.send({"type": "signal", "payload": {"sdp": SDP, "type": "offer"}})
        assert await _next_signal(v2) == {"sdp": SDP, "type": "offer"}
        await v2.send({"type": "signal", "to": v1.my_id, "payload": {"candidate": SDP}})
        assert await _next_signal(v1) == {"candidate": SDP}

        # Bad input carrying secrets: errors go to the client, never to the log.
        await bad.join(room)
        for frame in (
            f'{{"type":"signal","payload":{{"sdp":"{MARKER} {IP}"',  # truncated JSON
            f'{{"type":"signal","payload":"{MARKER}",}}',
            f'{{"type":"{MARKER}-{IP}"}}',
            json.dumps({"type": "signal", "payload": SDP, "traceparent": MARKER}),
            json.dumps({"type": "signal", "payload": SDP, "to": IP}),
            json.dumps({"type": "join", "roomId": f"{MARKER}-{IP}"}),  # stays in `room`
            json.dumps(
                {
                    "type": "resume",
                    "roomId": room,
                    "peerId": IP,
                    "resumeToken": MARKER,
                    "lastSeq": 0,
                }
            ),
            json.dumps({"type": "signal", "payload": SDP, "to": MARKER}),  # still in `room`
        ):
            await bad.send(frame)
            assert (await bad.recv())["type"] == "error", frame

        # An oversized frame (default limit 64 KiB) full of secrets: closed with 1009.
        await big.join(room)
        await big.send({"type": "signal", "payload": f"{MARKER} {IP} " * 5000})
        assert (await big.closed())[0] == 1009
        await v1.send({"type": "signal", "payload": SDP})
        assert await _next_signal(v2) == SDP
        await v2.send({"type": "leave"})
        while (msg := await v2.recv())["type"] != "left":
            assert msg["type"] in ("peer_joined", "peer_left"), msg
