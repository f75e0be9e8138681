"""The seed's room lifecycle: an idle room expires, its sockets are closed, it is gone.

Seed README: "When a room expires, the server closes any connected sockets in that room
and deletes the room." `ROOM_TIMEOUT_MS` is the same variable the seed reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.server import ServerProcess, spawn_server

from .conftest import open_client

TIMEOUT_MS = 800


@pytest.fixture(scope="module")
def fast_expiry_server() -> Iterator[ServerProcess]:
    with spawn_server(env={"ROOM_TIMEOUT_MS": str(TIMEOUT_MS)}) as srv:
        yield srv


async def test_idle_room_expires_closes_v1_sockets_and_is_gone(
    fast_expiry_server: ServerProcess,
) -> None:
    server = fast_expiry_server
    a = await open_client(server, "A")
    b = await open_client(server, "B")
    try:
        await a.send_raw('{"type":"create"}')
        room_id = (await a.recv_type("room_created"))["roomId"]
        await b.send_raw('{"type":"join","roomId":"' + room_id + '"}')
        await b.recv_type("room_joined")
        started = time.monotonic()

        # Nobody talks: both sockets are closed by the server around ROOM_TIMEOUT_MS.
        for client in (a, b):
            try:
                leftovers = await asyncio.wait_for(client.drain(quiet=30), 15)
            except TimeoutError:
                raise AssertionError(f"{client.name}: idle room never expired") from None
            assert client.ws.state.name == "CLOSED", f"{client.name} still open: {leftovers}"
            for msg in leftovers:
                assert msg.get("type") not in ("peer_joined", "peer_left"), msg
                assert "seq" not in msg, msg
        elapsed = time.monotonic() - started
        assert elapsed >= TIMEOUT_MS / 1000 * 0.9, f"closed after {elapsed:.2f}s, too early"
        assert elapsed < TIMEOUT_MS / 1000 + 10, f"closed only after {elapsed:.2f}s"

        # The room is deleted: joining it now fails like joining any unknown room.
        c = await open_client(server, "C")
        try:
            await c.send_raw('{"type":"join","roomId":"' + room_id + '"}')
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
    """Expiry is "after inactivity" (seed README): relayed signals keep a room alive."""
    server = fast_expiry_server
    a = await open_client(server, "A")
    b = await open_client(server, "B")
    try:
        await a.send_raw('{"type":"create"}')
        room_id = (await a.recv_type("room_created"))["roomId"]
        await b.send_raw('{"type":"join","roomId":"' + room_id + '"}')
        await b.recv_type("room_joined")
        # Keep talking for ~3x the timeout, each gap well under it.
        deadline = time.monotonic() + 3 * TIMEOUT_MS / 1000
        n = 0
        while time.monotonic() < deadline:
            await a.send_raw('{"type":"signal","payload":' + str(n) + "}")
            msg = await b.recv()
            assert msg["type"] == "signal" and msg["payload"] == n, msg
            n += 1
            await asyncio.sleep(TIMEOUT_MS / 1000 / 4)
    except ConnectionClosed as exc:
        raise AssertionError(f"room expired despite activity after {n} signals: {exc}") from exc
    finally:
        await a.close()
        await b.close()
