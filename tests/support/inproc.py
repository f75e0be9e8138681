"""Real ``Connection`` objects on a real ``Hub``, over an in-memory transport.

For tests that drive the whole server shell (connection, supervisor, actors, journal,
delivery) many thousands of times, deterministically and without sockets: each client is
a ``Connection`` whose transport records the bytes the server wrote, and whose inbound
bytes are masked client frames fed to ``data_received``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterable
from typing import Any

from signaling.transport.connection import Connection
from signaling.transport.server import Hub


class MemoryTransport(asyncio.Transport):
    """Collects written bytes; ``close``/``abort`` end the connection like a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closing = False
        self.protocol: Connection | None = None

    def write(self, data: Any) -> None:
        self.data += data

    def writelines(self, chunks: Iterable[Any]) -> None:
        for chunk in chunks:
            self.data += chunk

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self._lost()

    def abort(self) -> None:
        self._lost()

    def _lost(self) -> None:
        if not self.closing:
            self.closing = True
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("127.0.0.1", 40000)
        return default


def masked(text: str) -> bytes:
    """One masked client text frame."""
    data = text.encode()
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    n = len(data)
    head = bytes((129, 128 | n)) if n < 126 else bytes((129, 128 | 126, n >> 8, n & 255))
    return head + key + body


def _handshake(v2: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    proto = "Sec-WebSocket-Protocol: signaling.v2\r\n" if v2 else ""
    return (
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{proto}\r\n"
    ).encode()


class MemoryClient:
    """One client: what it sent goes through the real connection; what it got is parsed."""

    def __init__(self, hub: Hub, v2: bool) -> None:
        self.conn = Connection(hub)
        self.transport = MemoryTransport()
        self.transport.protocol = self.conn
        self.conn.connection_made(self.transport)
        self.conn.data_received(_handshake(v2))
        head, sep, _ = bytes(self.transport.data).partition(b"\r\n\r\n")
        assert sep and head.startswith(b"HTTP/1.1 101"), head
        del self.transport.data[: len(head) + len(sep)]
        self.v2 = v2
        self.close_code: int | None = None
        self.received: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        if not self.transport.closing:
            self.conn.data_received(masked(json.dumps(message)))

    def drop(self) -> None:
        """Vanish without a close frame."""
        self.transport.abort()

    @property
    def closed(self) -> bool:
        return self.transport.closing or self.close_code is not None

    def messages(self) -> list[dict[str, Any]]:
        """Everything received so far (parsing what arrived since the last call)."""
        data = self.transport.data
        pos = 0
        while len(data) - pos >= 2:
            op, length = data[pos] & 0x0F, data[pos + 1] & 0x7F
            head = 2
            if length == 126:
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            if len(data) - pos < head + length:
                break
            body = bytes(data[pos + head : pos + head + length])
            pos += head + length
            if op == 0x1:
                self.received.append(json.loads(body))
            elif op == 0x8:
                self.close_code = int.from_bytes(body[:2], "big") if len(body) >= 2 else 1005
                self.transport.abort()  # the client answers and the socket closes
        del data[:pos]
        return self.received
