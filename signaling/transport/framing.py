"""Where client frames begin and end, from their headers alone (RFC 6455 5.2).

``Connection`` takes whole final text frames itself (the fast path) and hands every
other frame to websockets' parser. It may only do so at a frame boundary of that parser:
a payload that happens to look like a frame header must never be read as one. The
parser's own buffer being empty says nothing (it is also empty after the parser took a
header and waits for the payload), so the connection keeps the boundary itself: it reads
the header of every frame it hands over, and feeds websockets exactly that frame's bytes
before looking for the next boundary. This module is that header arithmetic, nothing else.
"""

from __future__ import annotations

from typing import Final

MAX_HEADER: Final = 14
"""2 bytes, 8 bytes of extended length, 4 bytes of mask key."""


def frame_size(buf: bytes, pos: int) -> int:
    """Total bytes (header, mask key, payload) of the frame starting at ``buf[pos]``.

    -1 while ``buf`` ends before the length is known. The header is read as websockets reads it
    (including for frames it will refuse: it consumes the same bytes before failing),
    so both sides count the same bytes.
    """
    avail = len(buf) - pos
    if avail < 2:
        return -1
    second = buf[pos + 1]
    length = second & 0x7F
    head = 6 if second & 0x80 else 2
    if length == 126:
        head += 2
        if avail < 4:
            return -1
        length = (buf[pos + 2] << 8) | buf[pos + 3]
    elif length == 127:
        head += 8
        if avail < 10:
            return -1
        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
    return head + length
