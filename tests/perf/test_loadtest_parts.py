"""The load tool's own parts: its WebSocket codec, its percentiles and its plan checks."""

from __future__ import annotations

import base64
import hashlib

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from signaling.loadtest import frames
from signaling.loadtest.plan import Plan
from signaling.loadtest.stats import percentile


def server_frame(opcode: int, data: bytes, fin: bool = True) -> bytes:
    n = len(data)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((first, n)) + data
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + data
    return bytes((first, 127)) + n.to_bytes(8, "big") + data


def test_client_frames_parse_as_masked_frames_in_websockets() -> None:
    mask = b"\x01\x02\x03\x04"
    for size in (0, 125, 126, 65535, 65536):
        data = b"a" * size
        reader = StreamReader()
        reader.feed_data(frames.client_frame(frames.TEXT, data, mask))
        parser = Frame.parse(reader.read_exact, mask=True)
        try:
            next(parser)
        except StopIteration as done:
            frame = done.value
        assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == data


@pytest.mark.parametrize("size", [5, 126, 70000])
def test_reader_reassembles_frames_split_at_every_byte_and_fragments(size: int) -> None:
    body = bytes(range(256)) * (size // 256 + 1)
    body = body[:size]
    stream = (
        server_frame(frames.TEXT, b"one")
        + server_frame(frames.TEXT, body[:3], fin=False)
        + server_frame(frames.PING, b"p")
        + server_frame(frames.CONT, body[3:], fin=True)
        + server_frame(frames.TEXT, body)
    )
    step = 1 if size < 1000 else 997
    reader = frames.FrameReader()
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(stream), step):
        got.extend(reader.feed(stream[i : i + step]))
    assert got == [(1, b"one"), (9, b"p"), (1, body), (1, body)]


def test_reader_refuses_masked_server_frames() -> None:
    with pytest.raises(frames.ProtocolError):
        frames.FrameReader().feed(b"\x81\x81abcdx")


def test_handshake_accept_key_is_checked() -> None:
    key = frames.new_key()
    accept = base64.b64encode(hashlib.sha1(key.encode() + frames._GUID).digest()).decode()
    head = f"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {accept}"
    frames.check_response(head.encode(), key, None)
    with pytest.raises(frames.HandshakeError):
        frames.check_response(head.encode(), frames.new_key(), None)
    with pytest.raises(frames.HandshakeError):  # asked for v2, not granted
        frames.check_response(head.encode(), key, "signaling.v2")
    with pytest.raises(frames.HandshakeError):
        frames.check_response(b"HTTP/1.1 403 Forbidden", key, None)


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert percentile(values, 100) == 100
    assert percentile([7], 1) == 7


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "http://x/"},
        {"peers": 1},
        {"rate": 0.0},
        {"payload_bytes": 10},
        {"protocol": 3},
        {"max_per_peer": 0},
        {"idle": -1},
        {"hold_s": -1.0},
        {"idle": 4, "idle_room_size": 1},
        {"idle": 5, "idle_room_size": 2},  # rooms are whole
    ],
)
def test_plan_refuses_what_cannot_run(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Plan(**bad)  # type: ignore[arg-type]


def test_plan_reads_the_url() -> None:
    plan = Plan(url="wss://signal.example.com/ws?x=1")
    assert (plan.host, plan.port, plan.tls, plan.path) == (
        "signal.example.com",
        443,
        True,
        "/ws?x=1",
    )


def test_plan_counts_relaying_and_idle_connections() -> None:
    assert Plan(rooms=20, peers=2, idle=4960, idle_room_size=2).connections == 5000
    assert Plan(rooms=3, peers=4).connections == 12
