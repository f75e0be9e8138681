"""Fresh TURN credentials arrive before the old ones expire; coturn itself is the judge.

Plain WebSocket clients, no browser (and a module of its own: Playwright's sync API must
not share a module with asyncio tests)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.browser.conftest import turn_env
from tests.support import coturn as turnserver
from tests.support.client import Client
from tests.support.server import spawn_server

pytestmark = pytest.mark.slow


async def test_fresh_credentials_arrive_before_expiry(coturn: turnserver.Coturn) -> None:
    ttl = 4
    with spawn_server(turn_env(coturn, coturn.secret, ttl), metrics=False) as server:
        client = await Client.open(server.url, v2=True, name="v2")
        v1 = await Client.open(server.url, name="v1")
        try:
            await client.send({"type": "create"})
            created = await client.recv()
            (first,) = created["iceServers"]
            first_expiry = int(first["username"].split(":")[0])
            assert first["username"].endswith(":" + created["myId"])
            assert await asyncio.to_thread(coturn.allocate, first["username"], first["credential"])

            refreshed = await client.recv(timeout=30)
            assert refreshed["type"] == "ice_servers"
            assert time.time() < first_expiry  # before the old credentials expire
            (second,) = refreshed["iceServers"]
            second_expiry = int(second["username"].split(":")[0])
            assert second_expiry > first_expiry
            assert await asyncio.to_thread(
                coturn.allocate, second["username"], second["credential"]
            )

            # The next refresh comes 3/4 TTL later, after the first credentials expired:
            # coturn now refuses them and accepts the newest.
            third = (await client.recv(timeout=30))["iceServers"][0]
            assert time.time() > first_expiry
            assert not await asyncio.to_thread(
                coturn.allocate, first["username"], first["credential"]
            )
            assert await asyncio.to_thread(coturn.allocate, third["username"], third["credential"])

            # v1 clients never see ICE servers, in replies or as messages.
            await v1.send({"type": "join", "roomId": created["roomId"]})
            joined = await v1.recv()
            assert joined["type"] == "room_joined" and "iceServers" not in joined
            # Another refresh for the v2 member; the v1 member got nothing in the meantime.
            await client.expect("ice_servers", timeout=30)
            await v1.silent()
        finally:
            await client.close()
            await v1.close()
