"""Micro-benchmark of the inbound byte path: ``Connection.data_received`` -> message text.

Times the frame layer alone (the message handler is replaced by a counter) so that the
cost of framing (fast path, boundary tracking, websockets' generic parser) is visible
without the rooms behind it. Not part of the test suite; run it on a quiet machine:

    .venv/bin/python scripts/bench-parse.py

Prints nanoseconds per message for a few segment shapes.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

from websockets.frames import Frame, Opcode

from signaling.config import Settings
from signaling.transport.connection import Connection
from signaling.transport.server import Hub

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class NullTransport:
    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class Counting(Connection):
    count = 0

    def _text(self, data: bytes) -> None:
        # The whole message handler, admission (Session.message) included: not framing.
        self.count += 1


def frame(payload: bytes) -> bytes:
    return Frame(Opcode.TEXT, payload).serialize(mask=True, extensions=[])


def candidate(n: int) -> bytes:
    return json.dumps(
        {
            "type": "signal",
            "payload": {
                "candidate": f"candidate:{n} 1 udp 2122260223 192.0.2.{n % 250} 54321 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            },
        }
    ).encode()


async def bench(label: str, segments: list[bytes], per_segment: float, rounds: int) -> None:
    hub = Hub(Settings(port=0, message_rate="0", byte_rate="0"))  # the limits are not timed here
    hub.ready = True
    conn = Counting(hub)
    conn.connection_made(NullTransport())  # type: ignore[arg-type]
    conn.data_received(HANDSHAKE)
    results = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for seg in segments:
            conn.data_received(seg)
        elapsed = time.perf_counter_ns() - start
        results.append(elapsed / (len(segments) * per_segment))
    assert conn.count == int(rounds * len(segments) * per_segment), conn.count
    best = min(results)
    print(
        f"{label:44s} {best:8.0f} ns/msg (median {statistics.median(results):.0f},"
        f" {len(segments) * per_segment * rounds} msgs)"
    )


async def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    frames = [frame(candidate(n)) for n in range(2000)]
    await bench("one frame per segment (candidate ~150 B)", frames, 1, rounds)
    batches = [b"".join(frames[i : i + 10]) for i in range(0, 2000, 10)]
    await bench("ten frames per segment", batches, 10, rounds)
    big = [frame(json.dumps({"type": "signal", "payload": "x" * 3000}).encode())] * 1000
    await bench("one 3 KB frame per segment (SDP-sized)", big, 1, rounds)
    split = []
    for f in frames:
        cut = 6 + (os.urandom(1)[0] % 20)
        split += [f[:cut], f[cut:]]
    await bench("one frame in two segments (cut in payload)", split, 1 / 2, rounds)


if __name__ == "__main__":
    asyncio.run(main())
