"""Messages shaped like the seed's Unity client (JsonUtility) and mixed v1/v2 rooms.

JsonUtility serialises every field of the message class, so the Unity client sends
`roomId` and a full `payload` object on `create` and `join`, and `roomId` on `signal`.
The server must ignore what it does not need and relay `payload` exactly as sent.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.client import Client
from tests.support.server import ServerProcess

from .conftest import V2_ONLY_FIELDS, V2_ONLY_TYPES

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# What JsonUtility.ToJson produces for an empty SignalPayload (compact, declaration order).
EMPTY_PAYLOAD = '{"sdp":"","sdpType":"","candidate":"","sdpMid":"","sdpMLineIndex":-1}'

OFFER_SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n"
)
# Field order deliberately not alphabetical, with escapes and non-ASCII text, so that any
# re-serialisation (sorted keys, ensure_ascii, different separators) shows up.
OFFER_PAYLOAD = (
    '{"sdp":' + json.dumps(OFFER_SDP) + ',"sdpType":"offer","candidate":"",'
    '"sdpMid":"","sdpMLineIndex":-1}'
)
CANDIDATE_PAYLOAD = (
    '{"sdp":"","sdpType":"","candidate":"candidate:842163049 1 udp 1677729535 '
    '192.0.2.2 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXfz",'
    '"sdpMid":"0","sdpMLineIndex":0}'
)
UNICODE_PAYLOAD = (
    '{"zeta":"last-first","alpha":"caf\u00e9 \U0001f600 \\"quoted\\" back\\\\slash",'
    '"nested":{"b":2,"a":[1,0.5,-1,true,null]},"sdpMLineIndex":-1}'
)


def unity(type_: str, room_id: str = "", payload: str = EMPTY_PAYLOAD) -> str:
    """A message as JsonUtility.ToJson writes it: every field, compact, in order."""
    return '{"type":"' + type_ + '","roomId":"' + room_id + '","payload":' + payload + "}"


def top_level_spans(raw: str) -> dict[str, str]:
    """Map each top-level key of a JSON object text to the exact text of its value."""
    decoder = json.JSONDecoder()
    spans: dict[str, str] = {}
    ws = " \t\r\n"
    i = 0
    while raw[i] in ws:
        i += 1
    assert raw[i] == "{", raw
    i += 1
    while True:
        while raw[i] in ws:
            i += 1
        if raw[i] == "}":
            return spans
        key, i = decoder.raw_decode(raw, i)
        assert isinstance(key, str), raw
        while raw[i] in ws:
            i += 1
        assert raw[i] == ":", raw
        i += 1
        while raw[i] in ws:
            i += 1
        _, end = decoder.raw_decode(raw, i)
        spans[key] = raw[i:end]
        i = end
        while raw[i] in ws:
            i += 1
        if raw[i] == ",":
            i += 1


def assert_v1_clean(msg: dict[str, Any], who: str) -> None:
    assert msg.get("type") not in V2_ONLY_TYPES, f"v1 client {who} got a v2-only message: {msg}"
    leaked = V2_ONLY_FIELDS & set(msg)
    assert not leaked, f"v1 client {who} got v2-only fields {leaked}: {msg}"


async def unity_create(server: ServerProcess, name: str) -> tuple[Client, str, str]:
    client = await Client.open(server, name=name)
    await client.send(unity("create"))
    msg = await client.recv_type("room_created")
    assert set(msg) == {"type", "roomId", "myId"}, msg
    assert re.fullmatch(r"\d{4}", msg["roomId"]), msg
    assert UUID_RE.match(msg["myId"]), msg
    return client, msg["roomId"], msg["myId"]


async def unity_join(server: ServerProcess, name: str, room_id: str) -> tuple[Client, str]:
    client = await Client.open(server, name=name)
    await client.send(unity("join", room_id))
    msg = await client.recv_type("room_joined")
    assert set(msg) == {"type", "roomId", "myId"}, msg
    assert msg["roomId"] == room_id, msg
    assert UUID_RE.match(msg["myId"]), msg
    return client, msg["myId"]


async def test_unity_create_join_signal_relayed_verbatim(server: ServerProcess) -> None:
    a, room_id, a_id = await unity_create(server, "A")
    b, b_id = await unity_join(server, "B", room_id)
    assert a_id != b_id
    try:
        for sender, sender_id, receiver, payload in (
            (a, a_id, b, OFFER_PAYLOAD),
            (b, b_id, a, OFFER_PAYLOAD.replace('"offer"', '"answer"')),
            (a, a_id, b, CANDIDATE_PAYLOAD),
            (b, b_id, a, UNICODE_PAYLOAD),
        ):
            await sender.send(unity("signal", room_id, payload))
            raw = await receiver.recv_text()
            msg = json.loads(raw)
            assert msg == {
                "type": "signal",
                "senderId": sender_id,
                "payload": json.loads(payload),
            }, raw
            spans = top_level_spans(raw)
            # Byte-for-byte: same keys, same order, same escapes, same number spelling.
            assert spans["payload"] == payload, (
                f"payload re-serialised:\n sent {payload!r}\n got  {spans['payload']!r}"
            )
        # Nobody hears their own signals, and a v1 client never gets anything extra.
        assert await a.drain(0.3) == []
        assert await b.drain(0.3) == []
    finally:
        await a.close()
        await b.close()


async def test_unity_string_payload_stays_a_string(server: ServerProcess) -> None:
    a, room_id, a_id = await unity_create(server, "A")
    b, _ = await unity_join(server, "B", room_id)
    try:
        inner = json.dumps({"type": "offer", "sdp": OFFER_SDP}, separators=(",", ":"))
        sent = json.dumps({"type": "signal", "roomId": room_id, "payload": inner})
        await a.send(sent)
        raw = await b.recv_text()
        msg = json.loads(raw)
        assert msg == {"type": "signal", "senderId": a_id, "payload": inner}, raw
        assert top_level_spans(raw)["payload"] == json.dumps(inner), raw
    finally:
        await a.close()
        await b.close()


async def test_unity_signal_reaches_every_other_member(server: ServerProcess) -> None:
    a, room_id, _ = await unity_create(server, "A")
    b, b_id = await unity_join(server, "B", room_id)
    c, _ = await unity_join(server, "C", room_id)
    try:
        await b.send(unity("signal", room_id, CANDIDATE_PAYLOAD))
        for receiver in (a, c):
            raw = await receiver.recv_text()
            assert json.loads(raw)["senderId"] == b_id, raw
            assert top_level_spans(raw)["payload"] == CANDIDATE_PAYLOAD, raw
        assert await b.drain(0.3) == [], "sender received its own signal"
        assert await a.drain(0.1) == []
        assert await c.drain(0.1) == []
    finally:
        for client in (a, b, c):
            await client.close()


async def test_unity_join_unknown_room(server: ServerProcess) -> None:
    a, room_id, _ = await unity_create(server, "A")
    missing = f"{(int(room_id) + 1) % 10000:04d}"
    other = await Client.open(server, name="other")
    try:
        # The number after `room_id` is almost surely free; make sure by trying a few.
        for candidate in (missing, *(f"{(int(room_id) + k) % 10000:04d}" for k in range(2, 50))):
            await other.send(unity("join", candidate))
            msg = await other.recv()
            if msg["type"] == "error":
                assert msg == {
                    "type": "error",
                    "message": "Room not found",
                    "code": "room_not_found",
                }, msg
                break
            # Someone else's room: leave it by reconnecting and try the next number.
            await other.close()
            other = await Client.open(server, name="other")
        else:
            raise AssertionError("could not find a free room number")
        # The failed join must not have put `other` anywhere: A's room stays private.
        await other.send(unity("signal", "", '{"x":1}'))
        assert await a.drain(0.3) == []
    finally:
        await a.close()
        await other.close()


async def test_mixed_room_v1_never_sees_v2_only_messages(server: ServerProcess) -> None:
    # A: v1 (Unity) creator.  B: v2.  C: v1 (Unity) joiner.
    a, room_id, a_id = await unity_create(server, "A")

    b = await Client.open(server, True, name="B")
    await b.send(unity("join", room_id))
    b_joined = await b.recv_type("room_joined")
    assert b_joined["roomId"] == room_id, b_joined
    b_id = b_joined["myId"]
    assert {"peers", "seq", "resumeToken"} <= set(b_joined), f"v2 room_joined: {b_joined}"
    assert a_id in json.dumps(b_joined["peers"]), f"A missing from peers: {b_joined}"

    c, c_id = await unity_join(server, "C", room_id)
    try:
        # B (v2) is told about C; A (v1) is not told about anybody.
        peer_joined = await b.recv_type("peer_joined")
        assert c_id in json.dumps(peer_joined), peer_joined
        assert "seq" in peer_joined, peer_joined

        # A broadcasts: B sees seq, C (v1) sees the seed's three fields only.
        await a.send(unity("signal", room_id, OFFER_PAYLOAD))
        to_b = await b.recv_text()
        b_sig = json.loads(to_b)
        assert b_sig["type"] == "signal" and b_sig["senderId"] == a_id, to_b
        assert "seq" in b_sig, f"v2 signal without seq: {to_b}"
        assert top_level_spans(to_b)["payload"] == OFFER_PAYLOAD, to_b
        to_c = await c.recv_text()
        assert set(json.loads(to_c)) == {"type", "senderId", "payload"}, to_c
        assert top_level_spans(to_c)["payload"] == OFFER_PAYLOAD, to_c

        # B answers A only: A gets a seed-shaped signal, C gets nothing.
        await b.send({"type": "signal", "to": a_id, "payload": {"sdpType": "answer", "sdp": "v=0"}})
        a_sig = await a.recv()
        assert a_sig == {
            "type": "signal",
            "senderId": b_id,
            "payload": {"sdpType": "answer", "sdp": "v=0"},
        }, a_sig
        assert await c.drain(0.3) == [], "targeted signal leaked to another member"

        # C leaves: B gets peer_left, A (v1) hears nothing.
        await c.close()
        peer_left = await b.recv_type("peer_left")
        assert c_id in json.dumps(peer_left), peer_left

        a_rest = await a.drain(0.5)
        assert a_rest == [], f"v1 client A got unexpected messages: {a_rest}"
        for raw in a.received + c.received:
            assert_v1_clean(json.loads(raw), "A/C")
        assert await b.drain(0.2) == []
    finally:
        await a.close()
        await b.close()
        await c.close()
