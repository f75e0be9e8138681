"""The seed's room lifecycle: an idle room expires, its sockets are closed, it is gone.

Seed README: "When a room expires, the server closes any connected sockets in that room
and deletes the room." `ROOM_TIMEOUT_MS` is the same variable the seed reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.client import Client
from tests.support.server import ServerProcess, spawn_server

TIMEOUT_MS = 1000  # long next to one round trip: the busy room never pauses that long


@pytest.fixture(scope="module")
def fast_expiry_server() -> Iterator[ServerProcess]:
    # The busy room's ping-pong runs as fast as one round trip allows (thousands of
    # signals per second on an idle machine): a flood by the per-connection message
    # limit's measure, which would refuse signals and let the room go quiet. This test
    # is about expiry, so that limit is off here.
    env = {"ROOM_TIMEOUT_MS": str(TIMEOUT_MS), "SIGNALING_MESSAGE_RATE": "0"}
    with spawn_server(env=env) as srv:
        yield srv


async def test_idle_room_expires_closes_v1_sockets_and_is_gone(
    fast_expiry_server: ServerProcess,
) -> None:
    server = fast_expiry_server
    a = await Client.open(server, name="A")
    b = await Client.open(server, name="B")
    try:
        await a.send('{"type":"create"}')
        room_id = (await a.recv_type("room_created"))["roomId"]
        await b.send('{"type":"join","roomId":"' + room_id + '"}')
        await b.recv_type("room_joined")

        # Nobody talks: both sockets are closed by the server (when is the subject of
        # test_activity_keeps_room_alive and of the unit tests' injected clock).
        for client in (a, b):
            try:
                leftovers = await asyncio.wait_for(client.drain(quiet=30), 30)
            except TimeoutError:
                raise AssertionError(f"{client.name}: idle room never expired") from None
            assert client.ws.state.name == "CLOSED", f"{client.name} still open: {leftovers}"
            for msg in leftovers:
                assert msg.get("type") not in ("peer_joined", "peer_left"), msg
                assert "seq" not in msg, msg

        # The room is deleted: joining it now fails like joining any unknown room.
        c = await Client.open(server, name="C")
        try:
            await c.send('{"type":"join","roomId":"' + room_id + '"}')
            msg = await c.recv()
            assert msg == {
                "type": "error",
                "message": "Room not found",
                "code": "room_not_found",
            }, msg
        finally:
            await c.close()
    finally:
        await a.close()
        await b.close()


async def test_activity_keeps_room_alive(fast_expiry_server: ServerProcess) -> None:
    """Expiry is "after inactivity" (seed README): relayed signals keep a room alive.

    A busy room and an idle room created after it: the idle one's expiry proves a full
    timeout has passed since the busy room was created, so the busy room survives only
    because its signals count as activity. Order, not durations.
    """
    server = fast_expiry_server
    a = await Client.open(server, name="A")
    b = await Client.open(server, name="B")
    idler = await Client.open(server, name="idler")
    n = 0
    try:
        await a.send('{"type":"create"}')
        room_id = (await a.recv_type("room_created"))["roomId"]
        await b.send('{"type":"join","roomId":"' + room_id + '"}')
        await b.recv_type("room_joined")
        await idler.send('{"type":"create"}')
        await idler.recv_type("room_created")
        idle_closed = asyncio.ensure_future(idler.closed(timeout=30))
        while not idle_closed.done():  # keep talking until the idle room has expired
            assert n < 1_000_000, "the idle room never expired"
            await a.send('{"type":"signal","payload":' + str(n) + "}")
            msg = await b.recv()
            assert msg["type"] == "signal" and msg["payload"] == n, msg
            n += 1
        assert idle_closed.result()[0] == 4000, idle_closed.result()
        # Still open after that, and still relaying.
        await b.send('{"type":"signal","payload":"still here"}')
        assert (await a.recv())["payload"] == "still here"
    except ConnectionClosed as exc:
        raise AssertionError(f"room expired despite activity after {n} signals: {exc}") from exc
    finally:
        await a.close()
        await b.close()
        await idler.close()
