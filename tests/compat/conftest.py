"""Shared fixtures for the wire-compatibility tests.

Every test here talks to the real `python -m signaling` subprocess (see
`tests/support/server.py`) over real sockets, the way the seed's clients do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.support.server import ServerProcess, spawn_server

V2 = Subprotocol("signaling.v2")

# Fields and message types that only a `signaling.v2` client may ever see.
V2_ONLY_TYPES = frozenset({"peer_joined", "peer_left"})
V2_ONLY_FIELDS = frozenset({"seq", "peers", "resumeToken"})


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with spawn_server() as srv:
        yield srv


class Client:
    """A WebSocket client that keeps the raw text of everything it receives."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.received_raw: list[str] = []

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg, separators=(",", ":")))

    async def recv_raw(self, within: float = 5.0) -> str:
        try:
            data = await asyncio.wait_for(self.ws.recv(), within)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: no message within {within}s; received so far: {self.received_raw}"
            ) from None
        assert isinstance(data, str), f"{self.name}: expected a text frame, got {data!r}"
        self.received_raw.append(data)
        return data

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        raw = await self.recv_raw(within)
        msg = json.loads(raw)
        assert isinstance(msg, dict), f"{self.name}: not a JSON object: {raw!r}"
        return msg

    async def recv_type(self, type_: str, within: float = 5.0) -> dict[str, Any]:
        """Receive the next message and require it to have `type_`."""
        msg = await self.recv(within)
        assert msg.get("type") == type_, f"{self.name}: expected {type_!r}, got {msg!r}"
        return msg

    async def drain(self, quiet: float = 0.5) -> list[dict[str, Any]]:
        """Everything that arrives until the connection has been quiet for `quiet` s."""
        out: list[dict[str, Any]] = []
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), quiet)
            except (TimeoutError, ConnectionClosed):
                return out
            assert isinstance(raw, str)
            self.received_raw.append(raw)
            out.append(json.loads(raw))

    async def close(self) -> None:
        await self.ws.close()


async def open_client(
    server: ServerProcess, name: str, *, v2: bool = False, within: float = 5.0
) -> Client:
    ws = await connect(server.url, subprotocols=[V2] if v2 else None, open_timeout=within)
    if v2:
        assert ws.subprotocol == V2, f"server did not accept {V2!r}: got {ws.subprotocol!r}"
    else:
        assert ws.subprotocol is None
    return Client(ws, name)
