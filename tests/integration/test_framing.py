"""Framing edge cases over a raw socket: the text-frame fast path and the generic parser
must agree on every byte sequence a client can send."""

from __future__ import annotations

import asyncio
import json
import os

from websockets.frames import Close, Frame, Opcode

from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.raw import RawClient


def masked(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=True, extensions=[])


def text(obj: object) -> bytes:
    return masked(Opcode.TEXT, json.dumps(obj).encode())


async def room_with_listener(server: Server) -> tuple[Client, RawClient, str]:
    listener = await Client.open(server)
    room = (await listener.create())["roomId"]
    raw = await RawClient.open(server.port)
    await raw.send_bytes(text({"type": "join", "roomId": room}))
    assert (await raw.next_text())["type"] == "room_joined"
    return listener, raw, room


async def test_frames_in_one_segment_split_anywhere_and_mixed_with_control(
    server: Server,
) -> None:
    listener, raw, _ = await room_with_listener(server)
    big = "y" * 300  # 16-bit length encoding
    stream = b"".join(
        [
            text({"type": "signal", "payload": 1}),
            masked(Opcode.PING, b"p1"),
            text({"type": "signal", "payload": big}),
            masked(Opcode.TEXT, b'{"type":"signal",', fin=False),
            masked(Opcode.PING, b"p2"),  # control frames may interleave with fragments
            masked(Opcode.CONT, b'"payload":3}'),
            text({"type": "signal", "payload": 4}),
        ]
    )
    rng = os.urandom(len(stream))
    pos = 0
    while pos < len(stream):  # random split points, including inside headers
        step = 1 + rng[pos] % 37
        await raw.send_bytes(stream[pos : pos + step])
        pos += step
        await asyncio.sleep(0)  # not a wait: lets the in-process server read each piece
    got = [(await listener.recv())["payload"] for _ in range(4)]
    assert got == [1, big, 3, 4]
    pongs = await raw.control_frames(Opcode.PONG, 2)
    assert [f.data for f in pongs] == [b"p1", b"p2"]
    await listener.close()
    raw.close()


async def test_invalid_utf8_closes_with_1007(server: Server) -> None:
    listener, raw, _ = await room_with_listener(server)
    await raw.send_bytes(masked(Opcode.TEXT, b'{"type":"signal","payload":"\xff"}'))
    close = await raw.close_frame()
    assert close.code == 1007
    await listener.silent()
    await listener.close()
    raw.close()


async def test_oversized_text_frame_closes_with_1009_on_either_path(
    start_server: StartServer,
) -> None:
    server = await start_server(max_message_bytes=300)
    for frames in (
        [text({"type": "signal", "payload": "z" * 400})],
        [  # the limit applies to the whole fragmented message
            masked(Opcode.TEXT, b'{"type":"signal","payload":"' + b"z" * 200, fin=False),
            masked(Opcode.CONT, b"z" * 200 + b'"}'),
        ],
    ):
        listener, raw, _ = await room_with_listener(server)
        await raw.send_bytes(b"".join(frames))
        assert (await raw.close_frame()).code == 1009
        await listener.silent()
        await listener.close()
        raw.close()


async def test_unmasked_client_frame_is_a_protocol_error(server: Server) -> None:
    listener, raw, _ = await room_with_listener(server)
    unmasked = Frame(Opcode.TEXT, b'{"type":"signal","payload":1}').serialize(
        mask=False, extensions=[]
    )
    await raw.send_bytes(unmasked)
    assert (await raw.close_frame()).code == 1002
    await listener.silent()
    await listener.close()
    raw.close()


async def test_client_close_is_answered(server: Server) -> None:
    listener, raw, _ = await room_with_listener(server)
    await raw.send_bytes(masked(Opcode.CLOSE, Close(1000, "bye").serialize()))
    assert (await raw.close_frame()).code == 1000
    assert await raw.is_closed_by_server()
    await listener.close()
    raw.close()
