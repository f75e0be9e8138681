"""The handshake and close deadlines are settings, and each is honoured.

Order, not elapsed time, decides: two servers differ only in the setting under test; the
client of the short one is cut off while the client of the long one is still connected.
"""

from __future__ import annotations

import asyncio
import socket

from tests.integration.conftest import StartServer
from tests.support.raw import RawClient

FAST_SWEEP = {"ping_interval": 0.2, "ping_timeout": 60.0}  # the sweep runs every 50 ms


async def still_open(sock: socket.socket) -> bool:
    """No EOF or reset is waiting on the socket (it may have unread data)."""
    try:
        data = sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    return bool(data)


async def test_a_silent_connection_is_cut_after_the_handshake_timeout(
    start_server: StartServer,
) -> None:
    short = await start_server(handshake_timeout=0.2, **FAST_SWEEP)
    long = await start_server(handshake_timeout=600.0, **FAST_SWEEP)
    loop = asyncio.get_running_loop()
    socks = []
    for server in (short, long):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        socks.append(sock)
    try:
        # Nothing is sent: the short server gives up on the handshake and closes.
        assert await asyncio.wait_for(loop.sock_recv(socks[0], 1024), 10) == b""
        assert await still_open(socks[1]), "the other server still waits for the handshake"
    finally:
        for sock in socks:
            sock.close()


async def test_a_client_ignoring_the_close_is_cut_after_the_close_timeout(
    start_server: StartServer,
) -> None:
    settings = {"room_timeout_ms": 200, **FAST_SWEEP}
    short = await start_server(close_timeout=0.2, **settings)
    long = await start_server(close_timeout=600.0, **settings)
    clients = [await RawClient.open(server.port) for server in (short, long)]
    try:
        for client in clients:
            await client.send_many(['{"type":"create"}'])
            assert (await client.next_text())["type"] == "room_created"
        # Both rooms expire and both servers send close 4000; neither client answers.
        for client in clients:
            assert (await client.close_frame()).code == 4000
        assert await clients[0].is_closed_by_server()
        assert await still_open(clients[1].sock), "the other server still waits for the close"
    finally:
        for client in clients:
            client.close()
