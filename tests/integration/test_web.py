"""The public port's static files over a raw socket: GET, HEAD, keep-alive next to the
probes, and the WebSocket upgrade on ``/`` untouched by the demo page; v2 room replies
carry ICE servers only when configured, and v1 replies never."""

from __future__ import annotations

import asyncio
import json
import time

from signaling.core.turn import credential
from signaling.transport.server import Server
from tests.integration.conftest import Make, StartServer


async def exchange(port: int, request: bytes) -> bytes:
    """Send raw request bytes; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def responses(data: bytes, head_only: list[bool]) -> list[tuple[str, dict[str, str], bytes]]:
    """Consecutive HTTP responses, framed by Content-Length (no body for HEAD answers)."""
    out = []
    for only in head_only:
        head, _, data = data.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
        size = 0 if only else int(headers["content-length"])
        out.append((status, headers, data[:size]))
        data = data[size:]
    assert data == b"", data[:200]
    return out


async def test_pipelined_get_head_and_probe_on_one_connection(server: Server) -> None:
    request = (
        b"GET /client/signaling.js HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    data = await exchange(server.port, request)
    js, page, probe = responses(data, [False, True, False])
    assert js[0] == page[0] == probe[0] == "HTTP/1.1 200 OK"
    assert js[1]["content-type"] == "text/javascript; charset=utf-8"
    assert js[1]["connection"] == "keep-alive"
    assert b"export class SignalingClient" in js[2]
    assert page[1]["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page[1]["content-security-policy"]
    assert int(page[1]["content-length"]) > 1000 and page[2] == b""
    assert probe[2] == b"ok\n"


async def test_websocket_on_root_still_works_next_to_the_page(
    server: Server, clients: Make
) -> None:
    data = await exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and b"<!doctype html>" in data
    client = await clients(v2=True)  # ws://127.0.0.1:port/
    created = await client.create()
    assert created["type"] == "room_created" and "iceServers" not in created


async def test_ice_servers_only_for_v2_and_only_when_configured(
    start_server: StartServer, clients: Make
) -> None:
    server = await start_server(
        turn_urls=("turn:127.0.0.1:3478?transport=udp",),
        stun_urls=("stun:127.0.0.1:3478",),
        turn_secret="integration-secret",
        turn_ttl_s=600,
    )
    v2 = await clients(v2=True, srv=server)
    before = time.time()
    created = await v2.create()
    stun, turn = created["iceServers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    expiry, _, peer = turn["username"].partition(":")
    assert peer == created["myId"]
    assert before + 600 <= int(expiry) <= time.time() + 601
    assert turn["credential"] == credential("integration-secret", turn["username"])
    v1 = await clients(srv=server)
    joined = await v1.join(created["roomId"])
    assert set(joined) == {"type", "roomId", "myId"}
    other = await clients(v2=True, srv=server)
    joined2 = await other.join(created["roomId"])
    assert json.loads(json.dumps(joined2["iceServers"]))[1]["username"].endswith(joined2["myId"])
