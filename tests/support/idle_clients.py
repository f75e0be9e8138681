"""Idle WebSocket clients in a process of their own (stdlib only, run as a script).

``python idle_clients.py PORT N [rooms]``: opens N WebSockets to 127.0.0.1:PORT, each from
its own loopback source address (127.1.x.y, as distinct users: per-address limits stay out
of the way), sends one ping on each and reads its pong (so the server's frame protocol has
done some work on every connection); with ``rooms``, pairs them up in rooms of 2 (one
``create``, one ``join``, as a 1:1 call that has finished signalling); prints ``READY`` and
holds them until stdin closes.
A separate process, so that the server's memory can be measured without the clients'.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys

PING = b"idle"


def source(i: int) -> str:
    return f"127.1.{(i // 250) % 250}.{(i % 250) + 1}"


def masked(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + key + body


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def read_text(sock: socket.socket) -> dict[str, object]:
    """One unmasked text frame from the server, decoded."""
    head = read_exact(sock, 2)
    if head[0] != 0x81:
        raise ConnectionError(f"unexpected frame {head!r}")
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(read_exact(sock, 2), "big")
    message = json.loads(read_exact(sock, size))
    assert isinstance(message, dict)
    return message


def send_text(sock: socket.socket, message: dict[str, str]) -> None:
    sock.sendall(masked(0x1, json.dumps(message).encode()))


def pair_up(creator: socket.socket, joiner: socket.socket) -> None:
    send_text(creator, {"type": "create"})
    created = read_text(creator)
    if created.get("type") != "room_created":
        raise ConnectionError(str(created))
    send_text(joiner, {"type": "join", "roomId": str(created["roomId"])})
    joined = read_text(joiner)
    if joined.get("type") != "room_joined":
        raise ConnectionError(str(joined))


def open_one(port: int, i: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((source(i), 0))
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(sock, 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode(errors="replace"))
    sock.sendall(masked(0x9, PING))
    if read_exact(sock, 2) != bytes((0x8A, len(PING))) or read_exact(sock, len(PING)) != PING:
        raise ConnectionError("no pong")
    return sock


def main() -> None:
    port, n = int(sys.argv[1]), int(sys.argv[2])
    socks = [open_one(port, i) for i in range(n)]
    if sys.argv[3:] == ["rooms"]:
        for creator, joiner in zip(socks[::2], socks[1::2], strict=False):
            pair_up(creator, joiner)
    print("READY", flush=True)
    sys.stdin.read()
    for sock in socks:
        sock.close()


if __name__ == "__main__":
    main()
