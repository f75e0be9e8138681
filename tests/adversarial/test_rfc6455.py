"""RFC 6455 edge cases over raw sockets, with the Autobahn test suite's categories 1-7 as
the checklist (framing, ping/pong, reserved bits, opcodes, fragmentation, UTF-8, close).

Each case is bytes a client sends and everything the server must answer: the signals a
listener in the same room receives, the pongs, the error replies, and the close code (or
that the connection stays usable). The bytes go out in one write, and again cut into
1-byte segments each read by the server on its own (Autobahn's "chopped" variants).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from websockets.frames import Opcode

from signaling.transport.server import Server
from tests.adversarial.adversary import Room, signal
from tests.adversarial.wsframes import BINARY, CLOSE, CONT, PING, PONG, TEXT, encode

LIMIT = 65_536  # SIGNALING_MAX_MESSAGE_BYTES's default


@dataclass(frozen=True)
class Case:
    frames: bytes
    relayed: list[object] = field(default_factory=list)  # payloads the listener receives
    pongs: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # error codes the client receives
    close: int | None = None  # the server's close code; None: still open and usable


def sized_signal(total: int) -> bytes:
    """A signal message of exactly ``total`` bytes."""
    empty = len(json.dumps({"type": "signal", "payload": ""}))
    return json.dumps({"type": "signal", "payload": "x" * (total - empty)}).encode()


def padding(total: int) -> object:
    return json.loads(sized_signal(total))["payload"]


def close_body(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


KOSME = "κόσμε".encode()
CASES: dict[str, Case] = {
    # 1. Framing: text and binary at every length encoding boundary.
    **{
        f"1 text {n} bytes": Case(encode(TEXT, sized_signal(n)), relayed=[padding(n)])
        for n in (125, 126, 127, 128, 65_535, LIMIT)
    },
    "1 text over the limit": Case(encode(TEXT, sized_signal(LIMIT + 1)), close=1009),
    "1 text 64-bit length form": Case(
        encode(TEXT, sized_signal(40), length_form=64), relayed=[padding(40)]
    ),
    "1 text 16-bit length form for 5 bytes": Case(
        encode(TEXT, b'"x"', length_form=16), errors=["bad_message"]
    ),
    "1 empty text": Case(encode(TEXT, b""), errors=["bad_json"]),
    **{
        f"1 binary {n} bytes": Case(encode(BINARY, b"\xfe" * n), errors=["bad_message"])
        for n in (0, 125, 126, 65_535, LIMIT)
    },
    "1 binary over the limit": Case(encode(BINARY, b"\0" * (LIMIT + 1)), close=1009),
    # 2. Pings and pongs.
    "2 ping empty": Case(encode(PING, b""), pongs=[b""]),
    "2 ping text": Case(encode(PING, b"Hello, world!"), pongs=[b"Hello, world!"]),
    "2 ping binary": Case(encode(PING, bytes(range(125))), pongs=[bytes(range(125))]),
    "2 ping 126 bytes": Case(encode(PING, b"p" * 126), close=1002),
    "2 unsolicited pong": Case(encode(PONG, b"unsolicited")),
    "2 unsolicited pong, then ping": Case(encode(PONG, b"u") + encode(PING, b"p"), pongs=[b"p"]),
    "2 ten pings": Case(
        b"".join(encode(PING, b"%d" % n) for n in range(10)),
        pongs=[b"%d" % n for n in range(10)],
    ),
    # 3. Reserved bits: no extension is negotiated, so any of them fails the connection,
    # after the messages before it.
    **{
        f"3 rsv {rsv} on {op.name}": Case(
            signal(1)
            + encode(op, b'{"a":1}' if op is not CLOSE else b"", rsv=rsv)
            + encode(PING, b"never"),
            relayed=[1],
            close=1002,
        )
        for rsv in (1, 2, 3, 4, 5, 6, 7)
        for op in (TEXT, BINARY, PING, CLOSE)
        if op is TEXT or rsv in (4, 7)
    },
    # 4. Reserved opcodes.
    **{
        f"4 opcode {op:#x}": Case(
            signal(1) + encode(op, b"x") + encode(PING, b"never"), relayed=[1], close=1002
        )
        for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)
    },
    # 5. Fragmentation.
    "5 ping fragmented": Case(encode(PING, b"a", fin=False) + encode(CONT, b"b"), close=1002),
    "5 pong fragmented": Case(encode(PONG, b"a", fin=False) + encode(CONT, b"b"), close=1002),
    "5 text in two fragments": Case(
        encode(TEXT, b'{"type":"signal",', fin=False) + encode(CONT, b'"payload":5}'),
        relayed=[5],
    ),
    "5 ping between fragments": Case(
        encode(TEXT, b'{"type":"signal",', fin=False)
        + encode(PING, b"mid")
        + encode(CONT, b'"payload":5}'),
        relayed=[5],
        pongs=[b"mid"],
    ),
    "5 text in one-byte fragments": Case(
        encode(TEXT, b"{", fin=False)
        + b"".join(encode(CONT, bytes([c]), fin=False) for c in b'"type":"signal","payload":')
        + encode(CONT, b"7}"),
        relayed=[7],
    ),
    "5 empty fragments then the message": Case(
        encode(TEXT, b"", fin=False)
        + encode(CONT, b"", fin=False)
        + encode(CONT, json.dumps({"type": "signal", "payload": 8}).encode()),
        relayed=[8],
    ),
    "5 continuation without a start": Case(encode(CONT, b"x"), close=1002),
    "5 continuation with FIN without a start": Case(
        encode(CONT, b"x", fin=False) + encode(CONT, b"y"), close=1002
    ),
    "5 text start, then text": Case(
        encode(TEXT, b"{", fin=False) + encode(TEXT, b"{}"), close=1002
    ),
    "5 empty continuations without end": Case(
        encode(TEXT, b"{", fin=False) + encode(CONT, b"", fin=False) * (LIMIT // 64), close=1009
    ),
    "5 fragments over the limit in bytes": Case(
        encode(TEXT, b"x" * 40_000, fin=False) + encode(CONT, b"x" * 40_000), close=1009
    ),
    # 6. UTF-8.
    "6 valid multibyte": Case(signal("κόσμε \U0010ffff"), relayed=["κόσμε \U0010ffff"]),
    "6 multibyte split across fragments": Case(
        encode(TEXT, b'{"type":"signal","payload":"' + KOSME[:1], fin=False)
        + encode(CONT, KOSME[1:] + b'"}'),
        relayed=["κόσμε"],
    ),
    "6 invalid byte": Case(encode(TEXT, b'{"type":"signal","payload":"\xff"}'), close=1007),
    "6 utf-16 surrogate in utf-8": Case(
        encode(TEXT, b'{"type":"signal","payload":"\xed\xa0\x80"}'), close=1007
    ),
    "6 overlong slash": Case(encode(TEXT, b'{"type":"signal","payload":"\xc0\xaf"}'), close=1007),
    "6 beyond U+10FFFF": Case(
        encode(TEXT, b'{"type":"signal","payload":"\xf4\x90\x80\x80"}'), close=1007
    ),
    "6 invalid across fragments": Case(
        encode(TEXT, b'{"type":"signal","payload":"' + KOSME, fin=False)
        + encode(CONT, b"\xed\xa0\x80" + b'"}'),
        close=1007,
    ),
    "6 truncated sequence at the end": Case(
        encode(TEXT, b'{"type":"signal","payload":"x"}' + KOSME[:1]), close=1007
    ),
    # 7. Close handling.
    "7 close 1000 with reason": Case(encode(CLOSE, close_body(1000, b"bye")), close=1000),
    "7 close without body": Case(encode(CLOSE, b""), close=1005),
    "7 close one byte": Case(encode(CLOSE, b"\x03"), close=1002),
    **{
        f"7 close code {code}": Case(encode(CLOSE, close_body(code)), close=code)
        for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)
    },
    **{
        f"7 close invalid code {code}": Case(encode(CLOSE, close_body(code)), close=1002)
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
    },
    "7 close reason invalid utf-8": Case(
        encode(CLOSE, close_body(1000, b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80")), close=1007
    ),
    "7 close reason 123 bytes": Case(encode(CLOSE, close_body(1000, b"r" * 123)), close=1000),
    "7 close frame 126 bytes": Case(encode(CLOSE, close_body(1000, b"r" * 124)), close=1002),
    "7 message then close": Case(
        signal(1) + encode(CLOSE, close_body(1000)), relayed=[1], close=1000
    ),
    "7 close then message and ping": Case(
        encode(CLOSE, close_body(1000)) + signal(2) + encode(PING, b"late"), close=1000
    ),
    "7 close in the middle of a fragmented message": Case(
        encode(TEXT, b"{", fin=False) + encode(CLOSE, close_body(1000)), close=1002
    ),
}


async def check(room: Room, case: Case) -> None:
    raw, listener = room.raw, room.listener
    if case.pongs:
        got = await raw.control_frames(Opcode.PONG, len(case.pongs))
        assert [bytes(f.data) for f in got] == case.pongs
    for code in case.errors:
        reply = await raw.next_text()
        assert (reply["type"], reply["code"]) == ("error", code), reply
    for payload in case.relayed:
        assert (await listener.recv())["payload"] == payload
    if case.close is None:
        await room.still_usable()
    else:
        assert (await raw.close_frame()).code == case.close
        assert await raw.is_closed_by_server()
    await listener.silent(0.05)


@pytest.mark.parametrize("name", list(CASES))
async def test_one_write(server: Server, name: str) -> None:
    room = await Room.open(server)
    await room.raw.send_bytes(CASES[name].frames)
    await check(room, CASES[name])
    await room.close()


CHOPPED = [name for name, case in CASES.items() if len(case.frames) < 400]


@pytest.mark.parametrize("name", CHOPPED)
async def test_chopped_into_one_byte_segments(server: Server, name: str) -> None:
    room = await Room.open(server)
    frames = CASES[name].frames
    for i in range(len(frames)):
        if room.conn.closed:
            break
        await room.segment(frames[i : i + 1])
    await check(room, CASES[name])
    await room.close()
