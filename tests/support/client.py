"""A test peer over the real websockets client: JSON in, JSON out, every wait bounded.

Shared by the in-process integration tests and the container tests, which differ only
in where the server runs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.my_id: str | None = None
        self.token: str | None = None
        self.seq = 0

    @classmethod
    async def connect(cls, url: str, v2: bool = False, **kwargs: Any) -> Any:
        """Open ``url``, asking for ``signaling.v2`` when ``v2``; returns a ``cls``."""
        ws = await connect(
            url,
            subprotocols=[Subprotocol("signaling.v2")] if v2 else None,
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
        """The next message, remembering the highest ``seq`` seen (for resume)."""
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

    def drop(self) -> None:
        """Vanish without a close frame, like a phone changing networks."""
        self.ws.transport.abort()

    async def close(self) -> None:
        await self.ws.close()
