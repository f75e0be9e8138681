"""Bad opening handshakes over real sockets: each gets its HTTP status (the ones websockets
gave, plus RFC 6455 4.2.2's 426 with ``Sec-WebSocket-Version``) and the connection ends;
the address's connection slot is given back; a good one after them still opens."""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.waiting import eventually

GOOD = {
    "Host": "127.0.0.1",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def request(version: str = "HTTP/1.1", **changes: str | None) -> bytes:
    headers = {**GOOD, **{k.replace("_", "-"): v for k, v in changes.items()}}
    # Not "/": a GET without an upgrade there is the demo page (SIGNALING_DEMO_PAGE).
    lines = [f"GET /call {version}"] + [f"{k}: {v}" for k, v in headers.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(server: Server, data: bytes) -> bytes:
    """Everything the server answers, up to its EOF (the guard is a failure guard)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


CASES = {
    "HTTP/1.0": (request("HTTP/1.0"), b"505", b""),
    "no Connection: upgrade": (request(Connection="keep-alive"), b"426", b"\r\nUpgrade: websocket"),
    "no Upgrade": (request(Upgrade=None), b"426", b"\r\nUpgrade: websocket"),
    "Upgrade: h2c": (request(Upgrade="h2c"), b"426", b""),
    "no Host": (request(Host=None), b"400", b""),
    "no key": (request(Sec_WebSocket_Key=None), b"400", b""),
    "key of 3 bytes": (request(Sec_WebSocket_Key="AAAA"), b"400", b""),
    "no version": (request(Sec_WebSocket_Version=None), b"400", b""),
    "version 8": (request(Sec_WebSocket_Version="8"), b"426", b"\r\nSec-WebSocket-Version: 13"),
    "bad subprotocol list": (request(Sec_WebSocket_Protocol="a b"), b"400", b""),
    "bad header name": (request(**{"X@Y": "1"}), b"400", b""),
    "request line over 8 KiB": (
        request().replace(b"GET /call ", b"GET /call?" + b"x" * 8200 + b" "),
        b"414",
        b"",
    ),
    "header line over 8 KiB": (request(X="x" * 8200), b"431", b""),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_bad_upgrade_gets_its_status_and_the_connection_ends(
    server: Server, name: str
) -> None:
    data, status, header = CASES[name]
    reply = await exchange(server, data + b"\x81\x80\0\0\0\0")  # and a frame after it
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b" "), reply
    assert header in head
    assert b"\r\nConnection: close" in head
    assert len(body) == int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    await eventually(lambda: not server.hub.connections, what="the refused socket gone")
    assert server.hub.admission.websockets == 0


async def test_a_good_upgrade_is_answered_with_the_101_and_stays_open(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request(Sec_WebSocket_Protocol="signaling.v2"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: signaling.v2\r\n\r\n"
    )
    (conn,) = server.hub.connections
    assert conn.opened and conn.protocol == 2
    writer.close()


# Every answer on the public port but the 101 comes from one builder (``http.response``):
# the same header names, in this order, whatever asked (README "Health checks").
COMMON = ["Date", "Content-Type", "Content-Length", "Cache-Control", "Connection"]
ANSWERS = {
    "probe": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, []),
    "405 to HEAD of the WebSocket path": (
        b"HEAD /call HTTP/1.1\r\nHost: x\r\n\r\n",
        405,
        ["Allow"],
    ),
    "400 to no HTTP": (b"GET /\nHTTP/1.1\r\n\r\n", 400, []),
    "431 to a head over 16 KiB": (b"GET /healthz HTTP/1.1\r\nX: " + b"x" * 17000, 431, []),
    "refused upgrade": (request(Upgrade=None), 426, ["Upgrade"]),
    "refused version": (request(Sec_WebSocket_Version="8"), 426, ["Sec-WebSocket-Version"]),
    "refused over the handshake rate": (request(), 429, ["Retry-After"]),
}


@pytest.mark.parametrize("name", list(ANSWERS))
async def test_every_plain_answer_has_one_header_set(start_server: StartServer, name: str) -> None:
    data, status, extra = ANSWERS[name]
    server = await start_server(handshake_rate="1/min")
    if status == 429:
        await exchange(server, request(Connection="close"))  # 426: takes the one token
    reply = await exchange(server, data)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), reply
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert list(fields) == COMMON + extra, lines
    assert email.utils.parsedate_to_datetime(fields["Date"]).tzname() == "UTC"
    assert fields["Cache-Control"] == "no-store"
    assert fields["Connection"] == "close"
    assert int(fields["Content-Length"]) == len(body) > 0
