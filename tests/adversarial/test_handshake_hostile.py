"""A hostile client's opening handshakes over real sockets, against the real server.

Each request gets a defined answer (an HTTP status, or the 101 and a working WebSocket)
and never a traceback (the autouse ``no_error_logged`` fixture); bytes after the head in
the same segment are frames; nothing after a refusal is read; admission runs for every
upgrade, and the 101 echoes only ``signaling.v2``, never a bearer token.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable

import pytest

from signaling.core import wire
from signaling.transport.connection import Connection
from signaling.transport.server import Server
from tests.adversarial.wsframes import PING, encode, server_frames, text
from tests.integration.conftest import StartServer
from tests.support.keys import SECRET, claims, hs_token
from tests.support.waiting import GUARD_S, eventually

V2 = wire.V2_SUBPROTOCOL
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
CREATE = text(json.dumps({"type": "create"}))


def upgrade(
    target: str = "/call", version: str = "HTTP/1.1", *extra: str, **fields: str | None
) -> bytes:
    headers: dict[str, str | None] = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    for name, value in fields.items():
        headers[name.replace("_", "-")] = value
    lines = [f"GET {target} {version}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if v is not None]
    lines += extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Raw:
    """A client socket that sends exactly the bytes it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""

    @classmethod
    async def open(cls, server: Server) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self) -> tuple[int, dict[str, str], bytes]:
        """The next response head: status, fields (lower-case names), the raw head."""
        data = self.buffer + await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), GUARD_S)
        head, _, self.buffer = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in fields.items()}, head

    async def refusal(self) -> tuple[int, dict[str, str]]:
        """A refusal: its status and fields, its whole body, then the server's EOF."""
        status, fields, _ = await self.head()
        rest = await asyncio.wait_for(self.reader.read(), GUARD_S)  # up to the EOF
        assert len(rest) == int(fields["content-length"]), rest
        assert fields["connection"] == "close"
        return status, fields

    async def frames(self, n: int) -> list[tuple[int, bytes]]:
        """The next ``n`` (or more) server frames."""
        data, self.buffer = self.buffer, b""
        while True:
            try:
                got = server_frames(data)
                if len(got) >= n:
                    return got
            except (AssertionError, IndexError):
                pass
            data += await asyncio.wait_for(self.reader.read(65536), GUARD_S)

    def close(self) -> None:
        self.writer.close()


def server_side(server: Server, raw: Raw) -> Connection:
    me = raw.writer.get_extra_info("sockname")
    (conn,) = [c for c in server.hub.connections if c.transport.get_extra_info("peername") == me]
    return conn


def read_since(conn: Connection, before: float) -> Callable[[], bool]:
    return lambda: conn.last_seen != before


async def works(raw: Raw) -> None:
    """The socket is an open WebSocket the server speaks to: create answers."""
    await raw.send(CREATE)
    ((op, payload),) = await raw.frames(1)
    assert op == 1 and json.loads(payload)["type"] == "room_created", payload


async def all_given_back(server: Server) -> None:
    await eventually(lambda: not server.hub.connections, what="every socket gone")
    assert server.hub.admission.websockets == 0


# ---- segmentation and pipelining ------------------------------------------------------------


async def test_an_upgrade_in_one_byte_segments_opens(server: Server) -> None:
    raw = await Raw.open(server)
    data = upgrade(Sec_WebSocket_Protocol=V2)
    # The listener defers accepts until a first byte arrives (server.defer_accept): the
    # server's side of the socket exists only once byte 0 is there.
    await raw.send(data[:1])
    await eventually(lambda: server.hub.connections, what="the server's socket")
    conn = server_side(server, raw)
    await eventually(lambda: conn._request is not None, what="byte 0 read")
    for i in range(1, len(data)):
        before = conn.last_seen
        await raw.send(data[i : i + 1])
        if i < len(data) - 1:  # each byte read on its own before the next is sent
            await eventually(read_since(conn, before), what=f"byte {i} read")
    status, fields, _ = await raw.head()
    assert (status, fields["sec-websocket-accept"], fields["sec-websocket-protocol"]) == (
        101,
        ACCEPT,
        V2,
    )
    await works(raw)
    raw.close()
    await all_given_back(server)


async def test_a_silent_connection_stays_with_the_kernel_until_it_speaks(
    server: Server,
) -> None:
    """The listener defers accepts (``TCP_DEFER_ACCEPT``): a client that connects and sends
    nothing costs the server no connection, no wake-up and no handshake timer; it is
    handed over, and answered, once its request arrives. Accepts are FIFO, so without the
    deferral the silent socket, connected first, would be accepted before the second."""
    silent = await Raw.open(server)
    speaker = await Raw.open(server)
    await speaker.send(upgrade())
    assert (await speaker.head())[0] == 101
    mine = silent.writer.get_extra_info("sockname")
    peers = [c.transport.get_extra_info("peername") for c in server.hub.connections]
    assert tuple(mine) not in [tuple(p) for p in peers]
    await silent.send(upgrade())
    assert (await silent.head())[0] == 101
    await works(silent)
    silent.close()
    speaker.close()
    await all_given_back(server)


async def test_frames_in_the_upgrade_segment_are_frames(server: Server) -> None:
    raw = await Raw.open(server)
    await raw.send(upgrade() + encode(PING, b"p1") + CREATE)
    status, _, head = await raw.head()
    assert status == 101, head
    frames = await raw.frames(2)
    assert (0xA, b"p1") in frames  # the pong
    (created,) = [json.loads(p) for op, p in frames if op == 1]
    assert created["type"] == "room_created"
    raw.close()
    await all_given_back(server)


async def test_nothing_after_a_refused_upgrade_is_read(server: Server) -> None:
    """A refused upgrade and a good one in the same segment: one refusal, then EOF."""
    raw = await Raw.open(server)
    await raw.send(upgrade(Sec_WebSocket_Key=None) + upgrade() + CREATE)
    status, _ = await raw.refusal()
    assert status == 400
    await all_given_back(server)


async def test_a_second_request_after_a_refusal_gets_nothing(server: Server) -> None:
    """The good request in a segment of its own, once the refusal is on its way."""
    raw = await Raw.open(server)
    await raw.send(upgrade(Sec_WebSocket_Version="8"))
    status, fields, _ = await raw.head()
    assert (status, fields["sec-websocket-version"]) == (426, "13")
    try:
        await raw.send(upgrade() + CREATE)
        rest = await asyncio.wait_for(raw.reader.read(), GUARD_S)  # up to the EOF
    except ConnectionResetError:  # the closed socket answered the late bytes with RST
        rest = raw.buffer
    assert len(raw.buffer + rest) >= int(fields["content-length"])
    assert b"HTTP/1.1" not in raw.buffer + rest
    await all_given_back(server)


async def test_a_probe_then_an_upgrade_on_one_connection(server: Server) -> None:
    raw = await Raw.open(server)
    await raw.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" + upgrade())
    status, fields, _ = await raw.head()
    assert (status, fields["connection"]) == (200, "keep-alive")
    raw.buffer = raw.buffer[int(fields["content-length"]) :]  # "ok\n"
    status, fields, _ = await raw.head()
    assert (status, fields["sec-websocket-accept"]) == (101, ACCEPT)
    await works(raw)
    raw.close()
    await all_given_back(server)


# ---- heads of every odd shape: each gets its answer ---------------------------------------


def many(n: int) -> tuple[str, ...]:
    return tuple(f"X-{i}: v" for i in range(n))


OPENS = {
    "Connection: keep-alive, Upgrade": upgrade(Connection="keep-alive, Upgrade"),
    "upgrade on /healthz": upgrade("/healthz"),
    "upgrade on /readyz": upgrade("/readyz?x=1"),
    "Content-Length: 0": upgrade(Content_Length="0"),
    "websockets' 128 headers": upgrade("/call", "HTTP/1.1", *many(128 - 5)),
    "absolute-form target": upgrade("http://127.0.0.1/call?token=x"),
    "latin-1 cookie": upgrade(Cookie="a=caf\xe9"),
    "leading empty line": b"\r\n" + upgrade(),
}


@pytest.mark.parametrize("name", list(OPENS))
async def test_odd_but_valid_upgrades_open(server: Server, name: str) -> None:
    raw = await Raw.open(server)
    await raw.send(OPENS[name])
    status, fields, head = await raw.head()
    assert (status, fields.get("sec-websocket-accept")) == (101, ACCEPT), head
    assert "sec-websocket-protocol" not in fields
    await works(raw)
    raw.close()
    await all_given_back(server)


REFUSED = {
    "HTTP/1.0": (upgrade("/call", "HTTP/1.0"), 505),
    "a body (Content-Length)": (upgrade(Content_Length="5") + b"hello", 400),
    "Transfer-Encoding": (upgrade(Transfer_Encoding="chunked") + b"5\r\nhello\r\n0\r\n\r\n", 400),
    "129 headers": (upgrade("/call", "HTTP/1.1", *many(129 - 5)), 431),
    "a head over 16 KiB": (upgrade("/call", "HTTP/1.1", *many(2000)), 431),
    "an unterminated head over 16 KiB": (b"GET /call HTTP/1.1\r\nX: " + b"x" * 17000, 431),
    "bare LF line ends": (upgrade().replace(b"\r\n", b"\n"), 400),
    "a bare LF in a header": (upgrade("/call", "HTTP/1.1", "X: a\nTransfer-Encoding: x"), 400),
    "obs-fold": (upgrade("/call", "HTTP/1.1", "X: a", " folded"), 400),
    "a line without a colon": (upgrade("/call", "HTTP/1.1", "NoColon"), 400),
    "two Hosts": (upgrade("/call", "HTTP/1.1", "Host: evil.example"), 400),
    "POST upgrade": (upgrade().replace(b"GET ", b"POST ", 1), 405),
    "HEAD upgrade": (upgrade().replace(b"GET ", b"HEAD ", 1), 405),
}


@pytest.mark.parametrize("name", list(REFUSED))
async def test_bad_heads_get_their_status(server: Server, name: str) -> None:
    data, expected = REFUSED[name]
    raw = await Raw.open(server)
    await raw.send(data + CREATE)
    status, _ = await raw.refusal()
    assert status == expected
    await all_given_back(server)


# ---- admission runs for every upgrade --------------------------------------------------------


async def test_a_bearer_token_in_the_subprotocols_is_never_echoed(
    start_server: StartServer,
) -> None:
    server = await start_server(jwt_secret=SECRET)
    token = hs_token(claims())
    for offered, echoed in (
        (f"bearer.{token}, {V2}", V2),
        (f"{V2}, bearer.{token}", V2),
        (f"bearer.{token}", None),  # the seed protocol: no header at all
    ):
        raw = await Raw.open(server)
        await raw.send(upgrade(Sec_WebSocket_Protocol=offered))
        status, fields, head = await raw.head()
        assert status == 101, head
        assert fields.get("sec-websocket-protocol") == echoed
        assert token.encode() not in head and b"bearer" not in head
        await works(raw)
        raw.close()
    await all_given_back(server)


@pytest.mark.parametrize(
    "data",
    [
        upgrade(Sec_WebSocket_Protocol=V2),
        upgrade("/healthz", Sec_WebSocket_Protocol=V2),  # a probe path is no way around it
        upgrade(Sec_WebSocket_Protocol=f"{V2}, bearer.not-a-token"),
        upgrade("/call?token=", Sec_WebSocket_Protocol="bearer."),
    ],
)
async def test_an_upgrade_without_a_valid_token_is_401(
    start_server: StartServer, data: bytes
) -> None:
    server = await start_server(jwt_secret=SECRET)
    raw = await Raw.open(server)
    await raw.send(data + CREATE)
    status, _ = await raw.refusal()
    assert status == 401
    await all_given_back(server)
