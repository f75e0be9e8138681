"""Events: facts about a room, numbered by a per-room sequence.

Events are the source of truth: they are appended to the journal before any of their
effects leave the process, room state is a fold over them (``room.evolve``), and a
resuming peer is replayed the frames of the events it missed (``delivery``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from signaling.core.commands import Protocol

PeerLeftReason = Literal["left", "disconnected", "expired"]


@dataclass(frozen=True, slots=True)
class RoomCreated:
    seq: int
    room_id: str
    at: float


@dataclass(frozen=True, slots=True)
class PeerJoined:
    seq: int
    peer_id: str
    protocol: Protocol
    token_digest: str
    at: float


@dataclass(frozen=True, slots=True)
class SignalRelayed:
    seq: int
    sender_id: str
    payload: str
    to: str | None
    at: float


@dataclass(frozen=True, slots=True)
class PeerDetached:
    seq: int
    peer_id: str
    at: float


@dataclass(frozen=True, slots=True)
class PeerResumed:
    seq: int
    peer_id: str
    at: float


@dataclass(frozen=True, slots=True)
class PeerLeft:
    seq: int
    peer_id: str
    reason: PeerLeftReason
    at: float


@dataclass(frozen=True, slots=True)
class RoomExpired:
    seq: int
    at: float


Event = (
    RoomCreated | PeerJoined | SignalRelayed | PeerDetached | PeerResumed | PeerLeft | RoomExpired
)


def event_size(event: Event) -> int:
    """Approximate bytes an event holds, for the journal's per-room byte budget."""
    if type(event) is SignalRelayed:
        payload = event.payload
        # Bytes, not characters: a resume replays this much into a send buffer. The
        # ASCII check is O(1) in CPython, so only non-ASCII payloads pay for an encode.
        return 96 + (len(payload) if payload.isascii() else len(payload.encode()))
    return 96
