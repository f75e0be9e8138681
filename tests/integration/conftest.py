"""In-process servers on ephemeral loopback ports, and peers connected to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from signaling.config import Settings
from signaling.telemetry.tracing import Tracing
from signaling.transport.server import Server
from tests.support.client import Client

StartServer = Callable[..., Awaitable[Server]]
Make = Callable[..., Awaitable[Client]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    servers: list[Server] = []

    async def start(tracing: Tracing | None = None, **overrides: Any) -> Server:
        values: dict[str, Any] = {"port": 0, "host": "127.0.0.1", "metrics_port": 0}
        values.update(overrides)
        server = Server(Settings(**values), tracing=tracing)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.hub.ready:
            await server.shutdown()


@pytest.fixture
async def server(start_server: StartServer) -> Server:
    return await start_server()


@pytest.fixture
async def clients(server: Server) -> AsyncIterator[Make]:
    """Factory of peers of ``server`` (or of ``srv=``); all closed after the test."""
    opened: list[Client] = []

    async def make(v2: bool = False, srv: Server | None = None, **kw: Any) -> Client:
        client = await Client.open(srv or server, v2, **kw)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.ws.close()
