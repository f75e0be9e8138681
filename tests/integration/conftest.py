"""In-process servers on ephemeral loopback ports, and a small JSON WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from signaling.config import Settings
from signaling.server import Server
from signaling.tracing import Tracing

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


class Client:
    """A test peer: JSON in, JSON out, with bounded waits."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.my_id: str | None = None
        self.token: str | None = None
        self.seq = 0

    @classmethod
    async def open(cls, server: Server, v2: bool = False, **kwargs: Any) -> Client:
        ws = await connect(
            f"ws://127.0.0.1:{server.port}/",
            subprotocols=["signaling.v2"] if v2 else None,  # type: ignore[list-item]
            open_timeout=5,
            **kwargs,
        )
        return cls(ws)

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = json.dumps(message)
        await self.ws.send(message)

    async def recv_text(self, timeout: float = 3.0) -> str:
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(data, str)
        return data

    async def recv(self, timeout: float = 3.0) -> dict[str, Any]:
        msg: dict[str, Any] = json.loads(await self.recv_text(timeout))
        if isinstance(msg.get("seq"), int):
            self.seq = max(self.seq, msg["seq"])
        return msg

    async def silent(self, timeout: float = 0.3) -> None:
        """Assert nothing arrives within ``timeout``."""
        try:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message: {data!r}")

    async def create(self) -> dict[str, Any]:
        await self.send({"type": "create"})
        reply = await self.recv()
        assert reply["type"] == "room_created", reply
        self.my_id, self.token = reply["myId"], reply.get("resumeToken")
        return reply

    async def join(self, room_id: str) -> dict[str, Any]:
        await self.send({"type": "join", "roomId": room_id})
        reply = await self.recv()
        assert reply["type"] == "room_joined", reply
        self.my_id, self.token = reply["myId"], reply.get("resumeToken")
        return reply

    async def close(self) -> None:
        await self.ws.close()


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
