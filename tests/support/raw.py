"""A misbehaving client: websockets' sans-I/O ``ClientProtocol`` on a raw asyncio socket.

It can stop reading (slow consumer), ignore pings (dead peer), ignore close frames, and
write many frames in one TCP segment (mailbox overload): things a well-behaved client
library never does.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri


class RawClient:
    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.loop = asyncio.get_running_loop()
        self.pending: deque[Frame] = deque()

    @classmethod
    async def open(cls, port: int, v2: bool = False, rcvbuf: int | None = None) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        protocol = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{port}/"),
            subprotocols=[Subprotocol("signaling.v2")] if v2 else None,
            max_size=None,
        )
        client = cls(sock, protocol)
        protocol.send_request(protocol.connect())
        await client.flush()
        while True:
            events = await client.receive()
            if any(isinstance(e, Response) for e in events):
                break
        assert protocol.handshake_exc is None, protocol.handshake_exc
        return client

    async def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                await self.loop.sock_sendall(self.sock, chunk)

    async def receive(self, timeout: float = 3.0) -> list[Any]:
        data = await asyncio.wait_for(self.loop.sock_recv(self.sock, 65536), timeout)
        if not data:
            self.protocol.receive_eof()
        else:
            self.protocol.receive_data(data)
        return self.protocol.events_received()

    async def send_bytes(self, data: bytes) -> None:
        """Raw bytes on the wire, for hand-made frames."""
        await self.loop.sock_sendall(self.sock, data)

    async def control_frames(self, opcode: Opcode, count: int) -> list[Frame]:
        """The next ``count`` frames with ``opcode``, skipping others."""
        found: list[Frame] = []
        while len(found) < count:
            found += [
                e for e in await self.receive() if isinstance(e, Frame) and e.opcode is opcode
            ]
        return found

    async def close_frame(self) -> Close:
        frame = (await self.control_frames(Opcode.CLOSE, 1))[0]
        return Close.parse(bytes(frame.data))

    async def send_many(self, texts: list[str]) -> None:
        """Every frame in a single write: the server parses them in one data_received."""
        for text in texts:
            self.protocol.send_text(text.encode())
        await self.flush()

    async def next_text(self, timeout: float = 3.0) -> dict[str, Any]:
        """The next text message; frames that arrived in the same read wait their turn."""
        while not self.pending:
            self.pending.extend(
                event
                for event in await self.receive(timeout)
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT
            )
        result: dict[str, Any] = json.loads(bytes(self.pending.popleft().data))
        return result

    async def is_closed_by_server(self, timeout: float = 10.0) -> bool:
        """True once the server closes or resets the TCP connection (whatever it sends
        before is read and discarded, pings unanswered); False if it is still open after
        ``timeout``, a failure guard."""
        try:
            async with asyncio.timeout(timeout):
                while await self.loop.sock_recv(self.sock, 65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()
