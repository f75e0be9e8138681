"""Differential property: the server's byte path agrees with websockets' own parser.

Random streams of valid and invalid client frames (text, binary, fragments, control
frames, reserved bits and opcodes, unmasked frames, odd length encodings, oversized
frames, invalid UTF-8, payloads that look like frame headers), cut at random points
into random TCP segments, go through ``Connection.data_received`` (fast path, boundary
tracking, websockets for the rest) and through a ``ServerProtocol`` fed the same bytes
one at a time, with the same message policy. Both must deliver the same messages, write
the same bytes (pongs, close frames with their codes) and close at the same point.

``make test`` runs a few thousand examples; ``make fuzz`` runs the same property with
many more (``SIGNALING_FUZZ_EXAMPLES``, default 200000).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from signaling.config import Settings
from signaling.core import commands as c
from signaling.core.errors import ErrorCode
from signaling.transport.connection import FRAGMENT_COST, Connection
from signaling.transport.effects import NOTHING, Effects
from signaling.transport.server import Hub
from signaling.transport.session import Session
from tests.adversarial.wsframes import HANDSHAKE, encode, header_end, smuggling

MAX = 256  # the smallest SIGNALING_MAX_MESSAGE_BYTES: 16-bit lengths both fit and overflow
EXAMPLES = int(os.environ.get("SIGNALING_FUZZ_EXAMPLES", "3000"))

Record = list[tuple[str, Any]]


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:
        self.written.extend(bytes(c) for c in chunks)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.2", 40000) if name == "peername" else default


class RecordingSession(Session):
    """The real session (admission, limits), with the message handler replaced by a
    recorder: what the connection hands over is the subject here, not what it means."""

    record: Record

    def receive(self, text: str, now: float, wall: float) -> c.Signal | Effects:
        self.record.append(("text", text))
        return NOTHING


class Recorded(Connection):
    """The real connection, feeding a recording session."""

    record: Record

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        session = RecordingSession(hub.admission, None, self.created, hub.supervisor)
        self.session = session
        self._limits = session.limits
        session.record = self.record = []

    def error(self, code: ErrorCode, message: str) -> None:
        self.record.append(("error", code))


Outcome = tuple[Record, bytes, bool]


def through_server(
    hub: Hub, segments: list[bytes], eof: bool, close_at: int | None = None
) -> Outcome:
    """``close_at``: the server starts the closing handshake (as on shutdown) after that
    many segments."""
    conn = Recorded(hub)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(HANDSHAKE)
    assert conn.opened and transport.written[0].startswith(b"HTTP/1.1 101")
    transport.written.clear()
    for i, segment in enumerate(segments):
        if i == close_at:
            conn.close(1001, "going away")
        if transport.closed:
            break
        conn.data_received(segment)
    if close_at == len(segments):
        conn.close(1001, "going away")
    if eof and not transport.closed:
        conn.eof_received()
    conn.connection_lost(None)
    return conn.record, b"".join(transport.written), transport.closed


class Reference:
    """websockets' ``ServerProtocol`` alone, with the server's message policy.

    Every message whose last frame arrived before the frame that ends the connection (a
    protocol error, a close frame) is delivered, however the bytes were segmented.
    """

    def __init__(self) -> None:
        self.ws = ServerProtocol(max_size=MAX)
        self.record: Record = []
        self.written: list[bytes] = []
        self.closed = False
        self.failed = False
        self.frag_op: Opcode | None = None
        self.frags: list[bytes] = []
        self.ws.receive_data(HANDSHAKE)
        (request,) = self.ws.events_received()
        assert isinstance(request, Request)
        self.ws.send_response(self.ws.accept(request))
        self.ws.data_to_send()

    def close(self) -> None:
        """The server starts the closing handshake; messages after it are not handled."""
        if self.ws.state is State.OPEN:
            self.failed = True
            self.ws.send_close(1001, "going away")
            self.written += self.ws.data_to_send()

    def feed(self, data: bytes | None) -> None:
        ws = self.ws
        if data is None:
            ws.receive_eof()
        else:
            ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Frame):
                self.frame(event)
        for chunk in ws.data_to_send():
            if chunk:
                self.written.append(chunk)
            else:
                self.closed = True

    def frame(self, frame: Frame) -> None:
        op, data = frame.opcode, bytes(frame.data)
        if op in (Opcode.TEXT, Opcode.BINARY):
            if not frame.fin:
                self.frag_op, self.frags = op, [data]
                return
        elif op is Opcode.CONT:
            self.frags.append(data)
            if sum(max(len(f), FRAGMENT_COST) for f in self.frags) > MAX:
                self.failed = True
                self.ws.fail(1009, "message too big (fragments)")
                return
            if not frame.fin:
                return
            op, data, self.frags = self.frag_op or Opcode.BINARY, b"".join(self.frags), []
        else:
            return
        if self.failed:  # messages are taken in order of arrival until the server fails
            return
        if op is Opcode.BINARY:
            self.record.append(("error", "bad_message"))
            return
        try:
            self.record.append(("text", data.decode()))
        except UnicodeDecodeError:
            self.failed = True
            self.ws.fail(1007, "invalid UTF-8")


def through_reference(segments: list[bytes], eof: bool, close_at: int | None = None) -> Outcome:
    """One byte at a time: each message is handled before the next byte is parsed, so
    the answer depends on the byte stream only, never on where TCP cut it (except
    where the server started closing)."""
    ref = Reference()
    stream = b"".join(segments)
    closing_at = -1 if close_at is None else sum(len(s) for s in segments[:close_at])
    for i in range(len(stream)):
        if i == closing_at:
            ref.close()
        if ref.closed:
            break
        ref.feed(stream[i : i + 1])
    if closing_at == len(stream):
        ref.close()
    if eof and not ref.closed:
        ref.feed(None)
    return ref.record, b"".join(ref.written), ref.closed


# ---- frames -------------------------------------------------------------------------------

masks = st.binary(min_size=4, max_size=4) | st.just(b"\x00\x00\x00\x00")
json_texts = st.sampled_from(
    [
        b'{"type":"signal","payload":{"candidate":"a=1"}}',
        b'{"type":"create"}',
        b"{}",
        b"",
        '{"type":"signal","payload":"\u00e9\u4e2d\U0001f600"}'.encode(),
    ]
)
payloads = st.one_of(
    json_texts,
    st.binary(max_size=40),  # often invalid UTF-8
    st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(100, MAX + 40).map(lambda n: b"x" * n),  # 16-bit lengths, over the limit
    st.sampled_from([b"\x81\x85", b"\x81\xfe\x00\x10", b"\x88\x80", b"\x89\x80"]).flatmap(
        lambda h: st.binary(max_size=12).map(lambda tail: h + tail)  # headers as payload
    ),
)
data_opcodes = st.sampled_from([Opcode.TEXT] * 6 + [Opcode.BINARY, Opcode.CONT])
control_opcodes = st.sampled_from([Opcode.PING, Opcode.PONG, Opcode.CLOSE])
reserved_opcodes = st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
close_payloads = st.one_of(
    st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 3000, 4999]).map(
        lambda code: code.to_bytes(2, "big") + b"bye"
    ),
    st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]).map(
        lambda code: code.to_bytes(2, "big")
    ),
    st.sampled_from([b"", b"\x03", b"\x03\xe8\xff\xfe", b"\x03\xe8" + b"r" * 124]),
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["data"] * 8 + ["control", "fragmented", "odd", "smuggle"]))
    mask = draw(masks)
    if kind == "data":
        form = draw(st.sampled_from([0] * 6 + [16, 64]))
        return encode(draw(data_opcodes), draw(payloads), mask=mask, length_form=form)
    if kind == "control":
        op = draw(control_opcodes)
        body = draw(close_payloads) if op is Opcode.CLOSE else draw(st.binary(max_size=130))
        return encode(op, body, mask=mask, fin=draw(st.booleans() | st.just(True)))
    if kind == "fragmented":
        first = draw(st.sampled_from([Opcode.TEXT, Opcode.TEXT, Opcode.BINARY]))
        empties = st.lists(st.just(b""), min_size=1, max_size=9)  # 64 bytes each, by count
        parts = draw(st.lists(payloads, min_size=1, max_size=5) | empties)
        out = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            out.append(encode(first if i == 0 else Opcode.CONT, part, fin=last, mask=mask))
            if draw(st.booleans()):
                out.append(encode(Opcode.PING, draw(st.binary(max_size=8)), mask=mask))
        return b"".join(out)
    if kind == "smuggle":
        inner = encode(Opcode.TEXT, b'{"type":"create"}', mask=draw(masks))
        inner += draw(st.sampled_from([b"", encode(Opcode.PING, b"p", mask=mask)]))
        return smuggling(inner, mask)
    # Reserved bits, reserved opcodes, unmasked frames.
    odd = draw(st.sampled_from(["rsv", "opcode", "unmasked"]))
    body = draw(payloads)
    if odd == "rsv":
        return encode(Opcode.TEXT, body, rsv=draw(st.integers(1, 7)), mask=mask)
    if odd == "opcode":
        return encode(draw(reserved_opcodes), body, mask=mask)
    return encode(Opcode.TEXT, body, mask=None)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], bool, int | None]:
    parts = draw(st.lists(frames(), min_size=1, max_size=8))
    if draw(st.integers(0, 9)) == 0:
        parts.append(draw(st.binary(min_size=1, max_size=20)))  # trailing garbage
    stream = b"".join(parts)
    # Cut points: anywhere, and where it hurts (right after a header, on boundaries).
    interesting: list[int] = []
    offset = 0
    for part in parts:
        if len(part) >= 2:
            interesting += [offset + 1, offset + min(header_end(part), len(part))]
        offset += len(part)
        interesting.append(offset)
    cuts = draw(
        st.lists(
            st.integers(1, max(1, len(stream) - 1)) | st.sampled_from(interesting),
            max_size=12,
        )
    )
    points = sorted({c for c in cuts if 0 < c < len(stream)})
    edges = [0, *points, len(stream)]
    segments = [stream[a:b] for a, b in itertools.pairwise(edges)]
    close_at = draw(st.none() | st.none() | st.integers(0, len(segments)))
    return segments, draw(st.booleans()), close_at


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    loop = asyncio.new_event_loop()

    async def make() -> Hub:
        # Abuse limits off: thousands of examples from one address test framing only.
        hub = Hub(
            Settings(
                port=0,
                max_message_bytes=MAX,
                handshake_rate="0",
                message_rate="0",
                byte_rate="0",
            )
        )
        hub.ready = True
        return hub

    yield loop.run_until_complete(make())
    loop.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(streams())
def test_server_path_agrees_with_websockets(
    hub: Hub, stream: tuple[list[bytes], bool, int | None]
) -> None:
    segments, eof, close_at = stream
    assert through_server(hub, segments, eof, close_at) == through_reference(
        segments, eof, close_at
    )


def test_a_payload_that_looks_like_a_frame_stays_payload(hub: Hub) -> None:
    """Issue 7's smuggling case, cut right after the outer header: the old fast path read
    the payload as a frame and answered ``create``. The payload's bytes (0x81 0x91 ...)
    are not UTF-8, so the message is refused with 1007 on both paths."""
    inner = encode(Opcode.TEXT, b'{"type":"create"}', mask=b"\0\0\0\0")
    frame = smuggling(inner)
    cut = header_end(frame)
    segments = [frame[:cut], frame[cut:]]
    record, written, closed = through_server(hub, segments, False)
    assert record == [] and closed
    assert written[:1] == b"\x88" and int.from_bytes(written[2:4], "big") == 1007
    assert (record, written, closed) == through_reference(segments, False)
