"""The test peer: the real websockets client, JSON in and out, every wait bounded.

One class for every suite (integration, compat, observability, container); they differ
only in where the server runs, which :func:`ws_url` hides. It keeps the raw text of
everything received (``received``), so failures and byte-exact checks can show it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

V2 = Subprotocol("signaling.v2")
RECV_GUARD_S = 5.0  # failure guard on one expected message


def ws_url(target: object) -> str:
    """The WebSocket URL of ``target``: a URL string, anything with a ``ws_url``
    (a server process, a container), or an in-process ``Server`` (its ``port``)."""
    if isinstance(target, str):
        return target
    url = getattr(target, "ws_url", None)
    if isinstance(url, str):
        return url
    port = getattr(target, "port", None)
    if isinstance(port, int):
        return f"ws://127.0.0.1:{port}/"
    raise TypeError(f"no WebSocket URL for {target!r}")


class Client:
    def __init__(self, ws: ClientConnection, name: str = "client") -> None:
        self.ws = ws
        self.name = name
        self.received: list[str] = []  # raw text of every message, in order
        self.my_id: str | None = None
        self.token: str | None = None
        self.seq = 0  # highest v2 ``seq`` seen (for resume)

    @classmethod
    async def open(
        cls, target: object, v2: bool = False, *, name: str = "client", **kwargs: Any
    ) -> Client:
        """Connect to ``target`` (see :func:`ws_url`), asking for ``signaling.v2`` when
        ``v2`` and checking the server's choice; ``kwargs`` go to websockets' connect."""
        ws = await connect(
            ws_url(target), subprotocols=[V2] if v2 else None, open_timeout=5, **kwargs
        )
        expected = V2 if v2 else None
        assert ws.subprotocol == expected, f"{name}: subprotocol {ws.subprotocol!r}"
        return cls(ws, name)

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        """A dict is sent as compact JSON (what JSON.stringify writes); text and bytes as is."""
        if isinstance(message, dict):
            message = json.dumps(message, separators=(",", ":"))
        await self.ws.send(message)

    async def recv_text(self, timeout: float = RECV_GUARD_S) -> str:
        try:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.name}: no message within {timeout}s; received: {self.received[-5:]}"
            ) from None
        assert isinstance(data, str), f"{self.name}: expected a text frame, got {data!r}"
        self.received.append(data)
        return data

    async def recv(self, timeout: float = RECV_GUARD_S) -> dict[str, Any]:
        """The next message as a JSON object, remembering the highest ``seq`` seen."""
        raw = await self.recv_text(timeout)
        msg = json.loads(raw)
        assert isinstance(msg, dict), f"{self.name}: not a JSON object: {raw!r}"
        if isinstance(msg.get("seq"), int):
            self.seq = max(self.seq, msg["seq"])
        return msg

    async def recv_type(self, type_: str, timeout: float = RECV_GUARD_S) -> dict[str, Any]:
        """The next message, which must have type ``type_``."""
        msg = await self.recv(timeout)
        assert msg.get("type") == type_, f"{self.name}: expected {type_!r}, got {msg!r}"
        return msg

    async def expect(self, *types: str, timeout: float = RECV_GUARD_S) -> dict[str, Any]:
        """The next message of one of ``types``, skipping others (membership notices)."""
        async with asyncio.timeout(timeout):
            while (msg := await self.recv())["type"] not in types:
                pass
        return msg

    async def silent(self, timeout: float = 0.3) -> None:
        """Assert nothing arrives within ``timeout``.

        A negative check: it can miss a late message but never fails a correct server.
        Prefer a barrier (a message known to come after the one that must not) where
        the protocol offers one.
        """
        try:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"{self.name}: unexpected message: {data!r}")

    async def drain(self, quiet: float = 0.5) -> list[dict[str, Any]]:
        """Everything that arrives until the connection closes or stays quiet ``quiet`` s
        (a negative check, like :meth:`silent`)."""
        out: list[dict[str, Any]] = []
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), quiet)
            except (TimeoutError, ConnectionClosed):
                return out
            assert isinstance(raw, str)
            self.received.append(raw)
            out.append(json.loads(raw))

    async def closed(self, timeout: float = RECV_GUARD_S) -> tuple[int | None, str | None]:
        """Wait for the connection to close; (close code, reason) the server sent."""
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code, self.ws.close_reason

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

    def resume_request(self, room_id: str) -> dict[str, Any]:
        """The v2 ``resume`` that takes this client's place back (from another socket)."""
        return {
            "type": "resume",
            "roomId": room_id,
            "peerId": self.my_id,
            "resumeToken": self.token,
            "lastSeq": self.seq,
        }

    def drop(self) -> None:
        """Vanish without a close frame, like a phone changing networks."""
        self.ws.transport.abort()

    async def close(self) -> None:
        await self.ws.close()


async def signals_from(client: Client, sender: str, count: int) -> list[Any]:
    """The next ``count`` signal payloads, each from ``sender``; v2 seq strictly rising."""
    payloads: list[Any] = []
    last_seq = 0
    while len(payloads) < count:
        msg = await client.recv_type("signal")
        assert msg["senderId"] == sender, msg
        if client.subprotocol is not None:
            assert msg["seq"] > last_seq, (msg, last_seq)
            last_seq = msg["seq"]
        payloads.append(msg["payload"])
    return payloads


async def share_room(creator: Client, joiner: Client) -> str:
    """``creator`` creates a room, ``joiner`` joins it, and ``creator`` has heard the join
    (so both are in it before anything else is sent); the room's id."""
    room: str = (await creator.create())["roomId"]
    await joiner.join(room)
    await creator.recv_type("peer_joined")
    return room
