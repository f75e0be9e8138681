"""The room: its state, ``decide`` and ``evolve``. Pure functions, no I/O, no asyncio.

``decide(state, command)`` answers "what happens?" with events (or a ``Rejection``);
``evolve(state, event)`` answers "what is the room now?". The actor shell calls them in
that order for every command, journals the events, and only then lets their effects out.
Because the state is a left fold of ``evolve`` over the journal (``replay``), a crashed
actor restarts exactly where it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from signaling.core import commands as c
from signaling.core import events as e
from signaling.core.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class RoomPolicy:
    """Limits that decisions depend on; fixed for a room's life."""

    timeout: float = 300.0
    max_members: int = 64


@dataclass(frozen=True, slots=True)
class Member:
    peer_id: str
    protocol: c.Protocol
    token_digest: str
    attached: bool = True
    detached_seq: int = 0
    detached_at: float = 0.0  # lets a restarted actor re-arm the rest of the grace period


@dataclass(frozen=True, slots=True)
class RoomState:
    room_id: str
    policy: RoomPolicy = RoomPolicy()
    seq: int = 0
    # Never mutated in place: evolve builds a new dict when membership changes.
    members: Mapping[str, Member] = field(default_factory=dict)
    last_activity: float = 0.0
    expired: bool = False

    def peers_of(self, peer_id: str) -> list[str]:
        """Ids of the other members, in join order."""
        return [p for p in self.members if p != peer_id]


@dataclass(frozen=True, slots=True)
class Rejection:
    code: ErrorCode
    message: str


Decision = tuple[e.Event, ...] | Rejection

NOT_IN_ROOM = Rejection("not_in_room", "Not in a room")
ROOM_NOT_FOUND = Rejection("room_not_found", "Room not found")
RESUME_FAILED = Rejection("resume_failed", "Cannot resume: join afresh")
NOTHING: tuple[e.Event, ...] = ()


def decide(state: RoomState, command: c.Command) -> Decision:
    """Validate ``command`` against ``state``; return the events it causes or why not."""
    seq = state.seq + 1
    match command:
        case c.Signal(peer_id, payload, to, at):
            member = state.members.get(peer_id)
            if member is None or not member.attached:
                return NOT_IN_ROOM
            if to is not None and (to == peer_id or to not in state.members):
                return Rejection("peer_not_found", f"No peer {to} in this room")
            return (e.SignalRelayed(seq, peer_id, payload, to, at),)
        case c.Create(peer_id, protocol, digest, at):
            if state.seq != 0:
                return Rejection("internal", "Room already exists")
            return (
                e.RoomCreated(seq, state.room_id, at),
                e.PeerJoined(seq + 1, peer_id, protocol, digest, at),
            )
        case c.Join(peer_id, protocol, digest, at):
            if state.expired or state.seq == 0:
                return ROOM_NOT_FOUND
            if peer_id in state.members:
                return Rejection("already_in_room", "Already in this room")
            if len(state.members) >= state.policy.max_members:
                return Rejection("room_full", "Room is full")
            return (e.PeerJoined(seq, peer_id, protocol, digest, at),)
        case c.Leave(peer_id, reason, at):
            if peer_id not in state.members:
                return NOTHING
            return (e.PeerLeft(seq, peer_id, reason, at),)
        case c.Detach(peer_id, at):
            member = state.members.get(peer_id)
            if member is None or not member.attached:
                return NOTHING
            return (e.PeerDetached(seq, peer_id, at),)
        case c.GraceOver(peer_id, detached_seq, at):
            member = state.members.get(peer_id)
            if member is None or member.attached or member.detached_seq != detached_seq:
                return NOTHING
            return (e.PeerLeft(seq, peer_id, "disconnected", at),)
        case c.Resume(peer_id, digest, last_seq, at):
            member = state.members.get(peer_id)
            if (
                state.expired
                or member is None
                or member.token_digest != digest
                or not 0 <= last_seq <= state.seq
            ):
                return RESUME_FAILED
            return (e.PeerResumed(seq, peer_id, at),)
        case c.Expire(at):
            if state.expired or state.seq == 0:
                return NOTHING
            if at - state.last_activity < state.policy.timeout:
                return NOTHING
            return (e.RoomExpired(seq, at),)
    raise TypeError(f"not a command: {command!r}")  # pragma: no cover


def evolve(state: RoomState, event: e.Event) -> RoomState:
    """The room after ``event``. Total: never raises for an event ``decide`` produced."""
    members = state.members
    match event:
        case e.SignalRelayed(seq, _, _, _, at):
            # Hot path: positional construction is measurably cheaper than replace().
            return RoomState(state.room_id, state.policy, seq, members, at, state.expired)
        case e.RoomCreated(seq, _, at):
            return RoomState(state.room_id, state.policy, seq, members, at, False)
        case e.PeerJoined(seq, peer_id, protocol, digest, at):
            members = {**members, peer_id: Member(peer_id, protocol, digest)}
            return RoomState(state.room_id, state.policy, seq, members, at, state.expired)
        case e.PeerDetached(seq, peer_id, at):
            old = members[peer_id]
            detached = Member(peer_id, old.protocol, old.token_digest, False, seq, at)
            members = {**members, peer_id: detached}
            last = state.last_activity
            return RoomState(state.room_id, state.policy, seq, members, last, state.expired)
        case e.PeerResumed(seq, peer_id, at):
            old = members[peer_id]
            members = {**members, peer_id: Member(peer_id, old.protocol, old.token_digest)}
            return RoomState(state.room_id, state.policy, seq, members, at, state.expired)
        case e.PeerLeft(seq, peer_id, _, _):
            members = {p: m for p, m in members.items() if p != peer_id}
            last = state.last_activity
            return RoomState(state.room_id, state.policy, seq, members, last, state.expired)
        case e.RoomExpired(seq, _):
            return RoomState(state.room_id, state.policy, seq, {}, state.last_activity, True)
    raise TypeError(f"not an event: {event!r}")  # pragma: no cover


def replay(initial: RoomState, events: Iterable[e.Event]) -> RoomState:
    """Fold ``events`` over ``initial``: how the journal rebuilds a room."""
    state = initial
    for event in events:
        state = evolve(state, event)
    return state
