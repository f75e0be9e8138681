"""Client frames built byte by byte, including the ones no client library would send.

``websockets.frames.Frame.serialize`` refuses invalid frames and always picks a random
mask and the shortest length encoding; the adversarial tests need every one of those
choices, so this encoder takes them as arguments.
"""

from __future__ import annotations

from websockets.frames import Opcode
from websockets.utils import apply_mask

TEXT, BINARY, CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
PING, PONG, CLOSE = Opcode.PING, Opcode.PONG, Opcode.CLOSE

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def encode(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x37\xfa\x21\x3d",
    length_form: int = 0,
) -> bytes:
    """One frame on the wire. ``mask=None`` sends it unmasked; ``length_form`` 7, 16
    or 64 forces that length encoding (0: the shortest), as RFC 6455 allows any."""
    n = len(payload)
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)])
    bit = 0x80 if mask is not None else 0
    if form == 7:
        head += bytes([bit | n])
    elif form == 16:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


def text(payload: bytes | str, **kw: object) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return encode(TEXT, data, **kw)  # type: ignore[arg-type]


def smuggling(inner: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """A text frame whose payload, as it appears on the wire, is ``inner``: what a
    parser that loses its place would read as a frame of its own."""
    return encode(TEXT, apply_mask(inner, mask), mask=mask)


def header_end(frame: bytes) -> int:
    """Bytes of ``frame`` before its payload (header, extended length, mask key)."""
    length = frame[1] & 0x7F
    head = 2 + (2 if length == 126 else 8 if length == 127 else 0)
    return head + (4 if frame[1] & 0x80 else 0)


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split unmasked server frames (opcode, payload); a trailing partial frame is an error."""
    out = []
    pos = 0
    while pos < len(data):
        n, head = data[pos + 1] & 0x7F, 2
        if n == 126:
            n, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif n == 127:
            n, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
        assert pos + head + n <= len(data), "incomplete frame"
        out.append((data[pos] & 0x0F, data[pos + head : pos + head + n]))
        pos += head + n
    return out
