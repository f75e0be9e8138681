"""The client side of RFC 6455, sans-I/O and only as much as a load generator needs.

Client frames must be masked (RFC 6455 5.3); the mask is applied by websockets' C helper
when it is there. Server frames are unmasked; ``FrameReader`` splits a byte stream into
(opcode, payload) pairs, joining fragments, so a deployment behind a proxy that
fragments still parses.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from typing import Final

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension is absent on exotic platforms
    from websockets.utils import apply_mask

TEXT: Final = 0x1
BINARY: Final = 0x2
CONT: Final = 0x0
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(Exception):
    """The server did not upgrade the connection (status, headers or accept key)."""


def handshake_request(
    host: str, path: str, key: str, subprotocol: str | None, headers: Iterable[tuple[str, str]]
) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def check_response(head: bytes, key: str, subprotocol: str | None) -> None:
    """Raise ``HandshakeError`` unless ``head`` (up to the blank line) accepts ``key``."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        raise HandshakeError(f"server answered {lines[0]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    if fields.get("sec-websocket-accept") != expected:
        raise HandshakeError("wrong Sec-WebSocket-Accept")
    if subprotocol and fields.get("sec-websocket-protocol") != subprotocol:
        raise HandshakeError(f"server did not accept subprotocol {subprotocol}")


def client_frame(opcode: int, data: bytes, mask: bytes) -> bytes:
    """One final, masked frame with a 4-byte ``mask`` key."""
    n = len(data)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE, n >> 8, n & 0xFF))
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    return head + mask + apply_mask(data, mask)


class ProtocolError(Exception):
    """The server sent bytes that are not a valid server frame stream."""


class FrameReader:
    """Incremental parser of unmasked server frames."""

    __slots__ = ("_buf", "_frag_data", "_frag_op")

    def __init__(self) -> None:
        self._buf = b""
        self._frag_op = -1
        self._frag_data: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Return every complete message (opcode, payload) in the stream so far."""
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, bytes]] = []
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1]
            if length & 0x80:
                raise ProtocolError("server frames must not be masked")
            head = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[head] << 8) | buf[head + 1]
                head += 2
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[head : head + 8], "big")
                head += 8
            end = head + length
            if end > n:
                break
            payload = buf[head:end]
            pos = end
            opcode = b0 & 0x0F
            if b0 & 0x80:  # FIN
                if opcode == CONT:
                    if self._frag_op < 0:
                        raise ProtocolError("continuation without a first fragment")
                    self._frag_data.append(payload)
                    out.append((self._frag_op, b"".join(self._frag_data)))
                    self._frag_op = -1
                    self._frag_data = []
                else:
                    out.append((opcode, payload))
            elif opcode == CONT:
                self._frag_data.append(payload)
            else:
                self._frag_op = opcode
                self._frag_data = [payload]
        self._buf = buf[pos:] if pos < n else b""
        return out
