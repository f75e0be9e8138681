"""Fresh TURN credentials arrive before the old ones expire; coturn itself is the judge.

Plain WebSocket clients, no browser (and a module of its own: Playwright's sync API must
not share a module with asyncio tests)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.browser.conftest import turn_env
from tests.support import coturn as turnserver
from tests.support.client import Client
from tests.support.server import spawn_server

pytestmark = pytest.mark.slow


async def arrivals(client: Client, queue: asyncio.Queue[tuple[dict[str, Any], float]]) -> None:
    """Every message with the wall-clock time it arrived (the test may be busy then)."""
    while True:
        msg = await client.recv(timeout=60)
        queue.put_nowait((msg, time.time()))


async def next_ice(queue: asyncio.Queue[tuple[dict[str, Any], float]]) -> tuple[Any, float]:
    while True:
        msg, at = await asyncio.wait_for(queue.get(), 30)
        if msg["type"] == "ice_servers":
            (server,) = msg["iceServers"]
            return server, at


def expiry(server: dict[str, Any]) -> int:
    return int(server["username"].split(":")[0])


async def test_fresh_credentials_arrive_before_expiry(coturn: turnserver.Coturn) -> None:
    ttl = 8  # refresh after 6 s, expiry after 8 to 9 s: a margin that survives a busy machine
    allocate = coturn.allocate
    with spawn_server(turn_env(coturn, coturn.secret, ttl), metrics=False) as server:
        client = await Client.open(server.url, v2=True, name="v2")
        v1 = await Client.open(server.url, name="v1")
        queue: asyncio.Queue[tuple[dict[str, Any], float]] = asyncio.Queue()
        reader: asyncio.Task[None] | None = None
        try:
            await client.send({"type": "create"})
            created = await client.recv()
            reader = asyncio.create_task(arrivals(client, queue))
            (first,) = created["iceServers"]
            assert first["username"] == f"{expiry(first)}:{created['myId']}"
            assert await asyncio.to_thread(allocate, first["username"], first["credential"])

            second, at = await next_ice(queue)
            assert at < expiry(first)  # fresh credentials before the old ones expire
            assert expiry(second) > expiry(first)
            assert await asyncio.to_thread(allocate, second["username"], second["credential"])

            # The next refresh comes 3/4 TTL later, after the first credentials expired:
            # coturn now refuses them and accepts the newest.
            third, at = await next_ice(queue)
            assert at > expiry(first)
            assert not await asyncio.to_thread(allocate, first["username"], first["credential"])
            assert await asyncio.to_thread(allocate, third["username"], third["credential"])

            # v1 clients never see ICE servers, in replies or as messages.
            await v1.send({"type": "join", "roomId": created["roomId"]})
            joined = await v1.recv()
            assert joined["type"] == "room_joined" and "iceServers" not in joined
            # Another refresh for the v2 member; the v1 member got nothing in the meantime.
            await next_ice(queue)
            await v1.silent()
        finally:
            if reader is not None:
                reader.cancel()
            await client.close()
            await v1.close()
