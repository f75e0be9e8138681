"""A hostile peer in a room, on a raw socket, next to a well-behaved listener."""

from __future__ import annotations

import json
from dataclasses import dataclass

from signaling.transport.connection import Connection
from signaling.transport.server import Server
from tests.adversarial.wsframes import text
from tests.support.client import Client
from tests.support.raw import RawClient
from tests.support.waiting import eventually


def signal(payload: object) -> bytes:
    return text(json.dumps({"type": "signal", "payload": payload}))


def server_side(server: Server, raw: RawClient) -> Connection:
    """The server's connection object for ``raw``."""
    me = raw.sock.getsockname()
    for conn in server.hub.connections:
        if conn.transport.get_extra_info("peername") == me:
            return conn
    raise AssertionError("no server connection for the raw client")


@dataclass
class Room:
    server: Server
    listener: Client
    raw: RawClient
    room_id: str
    conn: Connection  # the server's side of ``raw``

    @classmethod
    async def open(cls, server: Server) -> Room:
        listener = await Client.open(server)
        room_id = (await listener.create())["roomId"]
        raw = await RawClient.open(server.port)
        await raw.send_bytes(text(json.dumps({"type": "join", "roomId": room_id})))
        assert (await raw.next_text())["type"] == "room_joined"
        return cls(server, listener, raw, room_id, server_side(server, raw))

    async def segment(self, data: bytes) -> None:
        """Send ``data`` and wait until the server has read it, so that the next send
        arrives in a separate ``data_received`` (a TCP segment of its own)."""
        conn = self.conn
        before = conn.last_seen
        await self.raw.send_bytes(data)
        await eventually(lambda: conn.last_seen != before, what="server read")

    async def still_usable(self) -> None:
        """The raw client's next signal reaches the listener."""
        await self.raw.send_bytes(signal("alive"))
        assert (await self.listener.recv())["payload"] == "alive"

    async def close(self) -> None:
        self.raw.close()
        await self.listener.close()
