"""Server CPU per relayed signal, in process: `python scripts/relay-microbench.py [N]
[WINDOW] [PEERS] [V2]` (defaults 20000 16 2 1).

A real Hub and real Connections over an in-memory transport: parse -> mailbox -> authority
-> journal -> delivery -> flush, without the kernel or a load generator, so two commits can
be compared on a busy machine (run them interleaved; read the minimum of the repetitions).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

import uvloop

from signaling.config import Settings
from signaling.transport.connection import Connection
from signaling.transport.server import Server

CANDIDATE = {
    "type": "candidate",
    "candidate": "candidate:1 1 UDP 2122252543 192.168.1.10 54321 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


class CountingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def write(self, data: Any) -> None:
        pass

    def writelines(self, chunks: Iterable[Any]) -> None:
        self.frames += len(list(chunks))

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def masked(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    n = len(data)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0xFE, n >> 8, n & 0xFF))
    return head + key + body


def handshake(v2: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    proto = "Sec-WebSocket-Protocol: signaling.v2\r\n" if v2 else ""
    return (
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{proto}\r\n"
    ).encode()


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def main(n: int, window: int, peers: int, v2: bool) -> None:
    # One sender at full speed: raise its rate limits far out of the way (the buckets
    # still run, so their cost is measured) or most signals would be refused.
    settings = Settings(
        port=0,
        host="127.0.0.1",
        metrics_port=0,
        message_rate="1000000000/s",
        byte_rate="1000000000000/s",
        loop_pacing_us=0,  # CPU per signal, not the waits pacing adds under steady load
    )
    hub = Server(settings).hub
    hub.ready = True
    conns: list[tuple[Connection, CountingTransport]] = []
    for _ in range(peers):
        conn, transport = Connection(hub), CountingTransport()
        conn.connection_made(transport)
        conn.data_received(handshake(v2))
        conns.append((conn, transport))
    sender = conns[0][0]
    sender.data_received(masked({"type": "create"}))
    await turns(5)
    room = sender.session.room
    assert room is not None
    for conn, _ in conns[1:]:
        conn.data_received(masked({"type": "join", "roomId": room.room_id}))
        await turns(5)
    frame = masked({"type": "signal", "payload": CANDIDATE})
    receivers = [t for _, t in conns[1:]]
    results = []
    for _ in range(5):
        before = [t.frames for t in receivers]
        started = time.process_time()
        for _ in range(n // window):
            for _ in range(window):
                sender.data_received(frame)
            await turns(2)
        await turns(5)
        results.append((time.process_time() - started) / (n // window * window) * 1e6)
        got = [t.frames - b for t, b in zip(receivers, before, strict=True)]
        assert all(g == n // window * window for g in got), got
    shown = ", ".join(f"{r:.2f}" for r in results)
    print(f"us per relayed signal: min {min(results):.2f} (runs: {shown})")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]] + [20000, 16, 2, 1][len(sys.argv) - 1 :]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(args[0], args[1], args[2], bool(args[3])))
