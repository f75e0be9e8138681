"""The journal's versioned encoding: every event and snapshot survives a round trip, the
format is pinned by golden bytes, and unknown versions or garbage are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.core import events as e
from signaling.core.room import Member, RoomPolicy, RoomState
from signaling.journal.codec import (
    CodecError,
    decode_event,
    decode_snapshot,
    encode_event,
    encode_snapshot,
)

ids = st.text(min_size=1, max_size=40)
seqs = st.integers(1, 2**53)
wall = st.floats(0, 4e9, allow_nan=False)
json_text = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
).map(lambda value: __import__("json").dumps(value, ensure_ascii=False))

events = st.one_of(
    st.builds(e.RoomCreated, seqs, ids, wall),
    st.builds(e.PeerJoined, seqs, ids, st.sampled_from([1, 2]), st.text(), wall),
    st.builds(e.SignalRelayed, seqs, ids, json_text, st.none() | ids, wall),
    st.builds(e.PeerDetached, seqs, ids, wall),
    st.builds(e.PeerResumed, seqs, ids, wall),
    st.builds(e.PeerLeft, seqs, ids, st.sampled_from(["left", "disconnected", "expired"]), wall),
    st.builds(e.RoomExpired, seqs, wall),
)


@given(events)
def test_every_event_round_trips(event: e.Event) -> None:
    assert decode_event(encode_event(event)) == event


@given(
    st.dictionaries(
        ids,
        st.tuples(st.sampled_from([1, 2]), st.text(), st.booleans(), st.integers(0, 99), wall),
        max_size=4,
    ),
    seqs,
    wall,
    st.booleans(),
)
def test_snapshots_round_trip(
    members: dict[str, tuple[int, str, bool, int, float]], seq: int, last: float, expired: bool
) -> None:
    state = RoomState(
        "1234",
        RoomPolicy(12.5, 7),
        seq,
        {p: Member(p, proto, d, a, ds, da) for p, (proto, d, a, ds, da) in members.items()},  # type: ignore[arg-type]
        last,
        expired,
    )
    assert decode_snapshot(encode_snapshot(state)) == state


def test_version_1_bytes_are_pinned() -> None:
    """Changing these bytes breaks journals written by earlier releases: add a version."""
    signal = e.SignalRelayed(7, "a", '{"sdp":"v=0\\r\\n"}', None, 1700000000.25)
    assert encode_event(signal) == (
        b'{"v":1,"type":"signal","seq":7,"senderId":"a",'
        b'"payload":"{\\"sdp\\":\\"v=0\\\\r\\\\n\\"}","to":null,"at":1700000000.25}'
    )
    joined = e.PeerJoined(2, "p", 2, "d1", 1.5)
    assert encode_event(joined) == (
        b'{"v":1,"type":"joined","seq":2,"peerId":"p","protocol":2,"tokenDigest":"d1","at":1.5}'
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"v":2,"type":"expired","seq":1,"at":0}',
        b'{"type":"expired","seq":1,"at":0}',
        b'{"v":1,"type":"nope","seq":1,"at":0}',
        b'{"v":1,"type":"left","seq":1,"peerId":"a","reason":"bored","at":0}',
        b'{"v":1,"type":"joined","seq":1,"peerId":"a","protocol":3,"tokenDigest":"","at":0}',
        b'{"v":1,"type":"signal","seq":1}',
        b"\xff",
    ],
)
def test_garbage_and_unknown_versions_are_refused(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_event(data)
