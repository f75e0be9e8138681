"""In-process servers on ephemeral loopback ports, and a small JSON WebSocket client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from signaling.config import Settings
from signaling.telemetry.tracing import Tracing
from signaling.transport.server import Server
from tests.support import client as support

StartServer = Callable[..., Awaitable[Server]]


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


class Client(support.Client):
    """A test peer of an in-process server."""

    @classmethod
    async def open(cls, server: Server, v2: bool = False, **kwargs: Any) -> Client:
        client: Client = await cls.connect(f"ws://127.0.0.1:{server.port}/", v2, **kwargs)
        return client


@pytest.fixture
async def clients(server: Server) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    opened: list[Client] = []

    async def make(v2: bool = False, srv: Server | None = None, **kw: Any) -> Client:
        client = await Client.open(srv or server, v2, **kw)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.ws.close()
