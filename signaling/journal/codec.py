"""The versioned encoding of events and snapshots, for journals that leave the process.

One JSON object per event, tagged with the format version ``v`` and the event ``type``.
A networked journal (Redis Streams) stores exactly these bytes, so instances running
different releases can share a stream: a reader refuses a version it does not know
(``CodecError``) instead of guessing. A signal's payload is the client's raw JSON text and
is stored as a string, so decoding gives back the very text that was relayed.

Version 1 (the only one so far), by ``type``:
``created`` {seq, roomId, at} · ``joined`` {seq, peerId, protocol, tokenDigest, at} ·
``signal`` {seq, senderId, payload, to, at} · ``detached``/``resumed`` {seq, peerId, at} ·
``left`` {seq, peerId, reason, at} · ``expired`` {seq, at}. ``at`` is wall-clock seconds.
"""

from __future__ import annotations

import json
from typing import Any, Final

from signaling.core import events as e
from signaling.core.room import Member, RoomPolicy, RoomState

VERSION: Final = 1


class CodecError(ValueError):
    """Bytes that are not an event or snapshot of a known version."""


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def encode_event(event: e.Event) -> bytes:
    match event:
        case e.SignalRelayed(seq, sender, payload, to, at):
            body: dict[str, Any] = {
                "type": "signal",
                "seq": seq,
                "senderId": sender,
                "payload": payload,
                "to": to,
                "at": at,
            }
        case e.RoomCreated(seq, room_id, at):
            body = {"type": "created", "seq": seq, "roomId": room_id, "at": at}
        case e.PeerJoined(seq, peer_id, protocol, digest, at):
            body = {
                "type": "joined",
                "seq": seq,
                "peerId": peer_id,
                "protocol": protocol,
                "tokenDigest": digest,
                "at": at,
            }
        case e.PeerDetached(seq, peer_id, at):
            body = {"type": "detached", "seq": seq, "peerId": peer_id, "at": at}
        case e.PeerResumed(seq, peer_id, at):
            body = {"type": "resumed", "seq": seq, "peerId": peer_id, "at": at}
        case e.PeerLeft(seq, peer_id, reason, at):
            body = {"type": "left", "seq": seq, "peerId": peer_id, "reason": reason, "at": at}
        case e.RoomExpired(seq, at):
            body = {"type": "expired", "seq": seq, "at": at}
        case _:
            raise CodecError(f"not an event: {event!r}")
    return _dump({"v": VERSION, **body})


def _load(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CodecError("not a JSON object")
    if obj.get("v") != VERSION:
        raise CodecError(f"unknown encoding version {obj.get('v')!r}")
    return obj


def decode_event(data: bytes) -> e.Event:
    obj = _load(data)
    try:
        kind = obj["type"]
        seq, at = int(obj["seq"]), float(obj["at"])
        if kind == "signal":
            return e.SignalRelayed(seq, obj["senderId"], obj["payload"], obj["to"], at)
        if kind == "created":
            return e.RoomCreated(seq, obj["roomId"], at)
        if kind == "joined":
            protocol = obj["protocol"]
            if protocol not in (1, 2):
                raise CodecError(f"bad protocol {protocol!r}")
            return e.PeerJoined(seq, obj["peerId"], protocol, obj["tokenDigest"], at)
        if kind == "detached":
            return e.PeerDetached(seq, obj["peerId"], at)
        if kind == "resumed":
            return e.PeerResumed(seq, obj["peerId"], at)
        if kind == "left":
            reason = obj["reason"]
            if reason not in ("left", "disconnected", "expired"):
                raise CodecError(f"bad reason {reason!r}")
            return e.PeerLeft(seq, obj["peerId"], reason, at)
        if kind == "expired":
            return e.RoomExpired(seq, at)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed event: {exc!r}") from None
    raise CodecError(f"unknown event type {kind!r}")


def encode_snapshot(state: RoomState) -> bytes:
    return _dump(
        {
            "v": VERSION,
            "type": "snapshot",
            "roomId": state.room_id,
            "policy": {"timeout": state.policy.timeout, "maxMembers": state.policy.max_members},
            "seq": state.seq,
            "members": [
                [m.peer_id, m.protocol, m.token_digest, m.attached, m.detached_seq, m.detached_at]
                for m in state.members.values()
            ],
            "lastActivity": state.last_activity,
            "expired": state.expired,
        }
    )


def decode_snapshot(data: bytes) -> RoomState:
    obj = _load(data)
    try:
        if obj["type"] != "snapshot":
            raise CodecError(f"not a snapshot: {obj['type']!r}")
        policy = RoomPolicy(float(obj["policy"]["timeout"]), int(obj["policy"]["maxMembers"]))
        members = {
            peer: Member(peer, protocol, digest, bool(attached), int(dseq), float(dat))
            for peer, protocol, digest, attached, dseq, dat in obj["members"]
        }
        return RoomState(
            obj["roomId"],
            policy,
            int(obj["seq"]),
            members,
            float(obj["lastActivity"]),
            bool(obj["expired"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed snapshot: {exc!r}") from None
