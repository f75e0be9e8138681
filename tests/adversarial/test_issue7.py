"""Issue 7's reproductions, each played over a raw socket against a real server."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.frames import Frame, Opcode

from signaling.transport.server import Server
from tests.adversarial.adversary import Room, signal
from tests.adversarial.wsframes import (
    CLOSE,
    HANDSHAKE,
    PING,
    TEXT,
    encode,
    header_end,
    server_frames,
    smuggling,
    text,
)
from tests.integration.conftest import StartServer
from tests.support.client import Client

# ---- 1. frame desync ----------------------------------------------------------------------


async def test_a_payload_that_looks_like_a_frame_is_never_parsed_as_one(server: Server) -> None:
    """``81 97 01 02 03 04`` then, in a later segment, 23 payload bytes that read as
    ``81 91 00 00 00 00 {"type":"create"}``: the old fast path answered room_created."""
    room = await Room.open(server)
    frame = smuggling(encode(TEXT, b'{"type":"create"}', mask=b"\0\0\0\0"))
    assert frame[:6] == bytes.fromhex("819701020304")
    await room.segment(frame[:6])
    await room.segment(frame[6:])
    assert (await room.raw.close_frame()).code == 1007  # the payload is not UTF-8
    assert await room.raw.is_closed_by_server()
    assert len(server.hub.supervisor.rooms) == 1  # no room was created
    await room.close()


async def test_an_honest_signal_split_after_its_header_is_relayed(server: Server) -> None:
    """A signal whose masked payload starts with 0x81 0x85, written as header + mask and
    then payload: it was answered bad_json and the next ping closed with 1002."""
    room = await Room.open(server)
    body = json.dumps({"type": "signal", "payload": {"sdp": "v=0"}}).encode()
    mask = bytes([body[0] ^ 0x81, body[1] ^ 0x85, 0x5A, 0xA5])
    frame = encode(TEXT, body, mask=mask)
    cut = header_end(frame)
    assert frame[cut : cut + 2] == b"\x81\x85"
    await room.segment(frame[:cut])
    await room.segment(frame[cut:])
    assert (await room.listener.recv())["payload"] == {"sdp": "v=0"}
    await room.raw.send_bytes(encode(PING, b"after"))
    assert [bytes(f.data) for f in await room.raw.control_frames(Opcode.PONG, 1)] == [b"after"]
    await room.still_usable()
    await room.close()


async def test_every_split_point_of_a_stream_gives_the_same_answers(server: Server) -> None:
    room = await Room.open(server)
    stream = signal(1) + encode(PING, b"p") + signal({"n": 2}) + text('{"type":"teleport"}')
    for cut in range(1, len(stream)):
        await room.segment(stream[:cut])
        await room.segment(stream[cut:])
        assert [(await room.listener.recv())["payload"] for _ in range(2)] == [1, {"n": 2}]
        frames: list[Frame] = []
        while len(frames) < 2:  # the pong and the error, in the order they were sent
            frames += [e for e in await room.raw.receive() if isinstance(e, Frame)]
        assert [f.opcode for f in frames] == [Opcode.PONG, Opcode.TEXT]
        assert bytes(frames[0].data) == b"p"
        assert json.loads(bytes(frames[1].data))["code"] == "unknown_type"
    await room.close()


# ---- 3. odd inputs get defined answers ----------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 20_000])
async def test_deeply_nested_payload_is_bad_message_and_the_connection_stays(
    server: Server, depth: int
) -> None:
    room = await Room.open(server)
    await room.raw.send_bytes(text('{"type":"signal","payload":' + "[" * depth + "]" * depth + "}"))
    reply = await room.raw.next_text()
    assert (reply["code"], reply["message"]) == ("bad_message", "JSON nested too deeply")
    await room.still_usable()
    await room.close()


async def test_five_thousand_digit_integer_is_relayed_as_it_came(server: Server) -> None:
    room = await Room.open(server)
    payload = '{"big":' + "9" * 5000 + ',"neg":-' + "1" * 4400 + "}"
    await room.raw.send_bytes(text('{"type":"signal","payload":' + payload + "}"))
    got = await room.listener.recv_text()
    assert got.endswith('"payload":' + payload + "}")
    await room.close()


@pytest.mark.parametrize("field", ["roomId", "type"])
async def test_lone_surrogate_in_a_field_is_bad_message_and_the_client_stays(
    server: Server, field: str
) -> None:
    room = await Room.open(server)
    message = {"type": "join", "roomId": room.room_id, field: "\ud800"}
    await room.raw.send_bytes(text(json.dumps(message)))  # json.dumps escapes it: \ud800
    assert (await room.raw.next_text())["code"] == "bad_message"
    await room.still_usable()  # still in its room
    await room.close()


async def test_v2_resume_with_a_lone_surrogate_token_fails_without_leaving_the_room(
    server: Server,
) -> None:
    a = await Client.open(server, v2=True)
    b = await Client.open(server, v2=True)
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv_type("peer_joined")
    resume = {
        "type": "resume",
        "roomId": room,
        "peerId": a.my_id,
        "resumeToken": "\ud800",
        "lastSeq": 0,
    }
    await b.send(json.dumps(resume))
    assert (await b.recv())["code"] == "resume_failed"
    await b.send({"type": "signal", "payload": "still here"})
    assert (await a.recv())["payload"] == "still here"
    await a.close()
    await b.close()


# ---- health endpoints over raw HTTP -------------------------------------------------------


async def http_exchange(server: Server, request: bytes, responses: int) -> list[bytes]:
    """Send ``request`` and read ``responses`` complete responses (then EOF or not)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    out: list[bytes] = []
    for _ in range(responses):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        is_head = request.split(b" ")[0] == b"HEAD" and len(out) == 0
        body = b"" if is_head else await asyncio.wait_for(reader.readexactly(length), 5)
        out.append(head + body)
    writer.close()
    return out


async def test_healthz_answers_with_trailing_crlf_and_pipelined_requests(server: Server) -> None:
    got = await http_exchange(
        server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n"
        b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz?probe=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        3,
    )
    assert [r.split(b"\r\n")[0] for r in got] == [b"HTTP/1.1 200 OK"] * 3
    assert got[0].endswith(b"\r\n\r\nok\n") and b"Connection: close" in got[2]


async def test_head_gets_headers_only(server: Server) -> None:
    (got,) = await http_exchange(server, b"HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 1)
    assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"\r\n\r\n")
    assert b"Content-Length: 3" in got


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"])
@pytest.mark.parametrize("path", [b"/healthz", b"/"])
async def test_other_methods_get_405(server: Server, method: bytes, path: bytes) -> None:
    request = method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    (got,) = await http_exchange(server, request, 1)
    assert got.startswith(b"HTTP/1.1 405 Method Not Allowed") and b"\r\nAllow: GET" in got


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400"),  # TLS hello-ish
        (b"GET /healthz\r\n\r\n", b"400"),  # HTTP/0.9
        (b"GET /healthz HTTP/1.1\r\nbroken header\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n{}", b"400"),
        (b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
    ],
)
async def test_garbage_gets_a_status_not_silence(
    server: Server, request_bytes: bytes, status: bytes
) -> None:
    (got,) = await http_exchange(server, request_bytes, 1)
    assert got.split(b" ")[1] == status


async def test_a_flood_of_bad_requests_is_logged_once(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(50):
        await http_exchange(server, b"DELETE /healthz HTTP/1.1\r\n\r\n", 1)
    lines = [r for r in caplog.records if getattr(r, "cause", None) == "http_405"]
    assert len(lines) <= 1  # one per minute per cause (0 if an earlier test logged it)


async def test_the_websocket_handshake_followed_by_frames_in_one_segment(server: Server) -> None:
    listener = await Client.open(server)
    room_id = (await listener.create())["roomId"]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(HANDSHAKE + text(json.dumps({"type": "join", "roomId": room_id})) + signal(3))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    assert (await listener.recv())["payload"] == 3
    writer.close()
    await listener.close()


async def test_limits_are_the_configured_ones(start_server: StartServer) -> None:
    """The fragment rule scales with SIGNALING_MAX_MESSAGE_BYTES (every frame >= 64 B)."""
    server = await start_server(max_message_bytes=1024)
    room = await Room.open(server)
    frames = (
        encode(TEXT, b"[", fin=False)
        + b"".join(encode(Opcode.CONT, b"1,", fin=False) for _ in range(14))
        + encode(Opcode.CONT, b"1]")
    )
    await room.raw.send_bytes(frames)  # 16 frames x 64 = 1024: allowed
    assert (await room.raw.next_text())["code"] == "bad_message"  # an array, not an object
    await room.raw.send_bytes(
        encode(TEXT, b"[", fin=False) + encode(Opcode.CONT, b"", fin=False) * 16
    )
    assert (await room.raw.close_frame()).code == 1009
    await room.close()


async def test_a_frame_cut_when_the_server_starts_closing_keeps_the_stream_aligned(
    server: Server,
) -> None:
    """The fast path holds the first part of a cut frame; the server then starts the
    closing handshake (shutdown, a timeout): websockets takes the frame over, so the
    pings and the close reply that follow are read as frames, not as payload."""
    room = await Room.open(server)
    frame = signal("x" * 1000)
    await room.segment(frame[:100])
    room.conn.close(1001, "going away")
    pings = b"".join(encode(PING, b"%d" % n) for n in range(50))
    await room.raw.send_bytes(frame[100:] + pings + encode(CLOSE, (1001).to_bytes(2, "big")))
    raw = room.raw
    received = b""
    async with asyncio.timeout(10):  # failure guard: the server closes the TCP connection
        while chunk := await raw.loop.sock_recv(raw.sock, 65536):
            received += chunk
    frames = server_frames(received)
    assert frames[0][0] == CLOSE and frames[0][1][:2] == (1001).to_bytes(2, "big")
    assert [data for op, data in frames if op == Opcode.PONG] == [b"%d" % n for n in range(50)]
    await room.listener.silent(0.05)  # a message completed after the close is not relayed
    await room.close()
