"""Properties of the pure core under random command sequences (hypothesis).

The model drives several rooms the way the connection shell does (leave the old room
before entering a new one, a rejected entry leaves the peer roomless) and checks:
a peer is a member of at most one room; each room's ``seq`` strictly increases, one per
event; and replaying the journal (snapshot + retained events, even with trimming)
rebuilds exactly the live state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.core import commands as c
from signaling.core.events import Event
from signaling.core.room import Rejection, RoomPolicy, RoomState, decide, evolve, replay
from signaling.journal import MemoryJournal

PEERS = [f"p{i}" for i in range(5)]
POLICY = RoomPolicy(timeout=10.0, max_members=3)

op = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(PEERS), st.sampled_from([1, 2])),
    st.tuples(st.just("join"), st.sampled_from(PEERS), st.integers(0, 3), st.sampled_from([1, 2])),
    st.tuples(st.just("signal"), st.sampled_from(PEERS), st.none() | st.sampled_from(PEERS)),
    st.tuples(st.just("leave"), st.sampled_from(PEERS)),
    st.tuples(st.just("drop"), st.sampled_from(PEERS)),
    st.tuples(st.just("grace"), st.sampled_from(PEERS)),
    st.tuples(st.just("resume"), st.sampled_from(PEERS), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("tick"), st.floats(0.0, 6.0)),
)


@dataclass
class World:
    journal: MemoryJournal
    rooms: dict[str, RoomState] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    where: dict[str, str | None] = field(default_factory=dict)  # the peer's current room
    protocol: dict[str, c.Protocol] = field(default_factory=dict)
    now: float = 0.0
    appended: dict[str, list[Event]] = field(default_factory=dict)

    def apply(self, room_id: str, command: c.Command) -> Rejection | tuple[Event, ...]:
        state = self.rooms[room_id]
        decision = decide(state, command)
        if isinstance(decision, Rejection):
            return decision
        for event in decision:
            assert event.seq == state.seq + 1, "seq must increase by one per event"
            state = evolve(state, event)
        self.journal.append(room_id, decision, self.rooms[room_id].seq, state)
        self.rooms[room_id] = state
        self.appended[room_id].extend(decision)
        return decision

    def leave_current(self, peer: str) -> None:
        """Like ``Connection._leave_current``: entering a room leaves the old one."""
        room = self.where.get(peer)
        if room is not None:
            self.where[peer] = None
            self.apply(room, c.Leave(peer, "left", self.now))

    def disconnected(self, peer: str) -> bool:
        """A dropped v2 peer's id comes back only through resume (new sockets get new ids)."""
        return any(peer in s.members and not s.members[peer].attached for s in self.rooms.values())

    def drop(self, peer: str) -> None:
        """Like ``Connection.connection_lost``: v2 detaches, v1 leaves as disconnected."""
        room = self.where.get(peer)
        if room is not None:
            self.where[peer] = None
            if self.protocol.get(peer) == 2:
                self.apply(room, c.Detach(peer, self.now))
            else:
                self.apply(room, c.Leave(peer, "disconnected", self.now))

    def step(self, operation: tuple[object, ...]) -> None:
        kind = operation[0]
        if kind in ("create", "join", "signal", "leave", "drop") and self.disconnected(
            operation[1]  # type: ignore[arg-type]
        ):
            return
        if kind == "create":
            _, peer, proto = operation
            assert isinstance(peer, str) and proto in (1, 2)
            self.leave_current(peer)
            room_id = str(1000 + len(self.order))
            self.rooms[room_id] = RoomState(room_id, POLICY, last_activity=self.now)
            assert asyncio.run(self.journal.create(room_id, self.rooms[room_id]))
            self.order.append(room_id)
            self.appended[room_id] = []
            self.protocol[peer] = proto
            self.apply(room_id, c.Create(peer, proto, f"t-{peer}", self.now))
            self.where[peer] = room_id
        elif kind == "join" and self.order:
            _, peer, idx, proto = operation
            assert isinstance(peer, str) and isinstance(idx, int)
            self.leave_current(peer)
            room_id = self.order[idx % len(self.order)]
            self.protocol[peer] = proto  # type: ignore[assignment]
            result = self.apply(room_id, c.Join(peer, proto, f"t-{peer}", self.now))  # type: ignore[arg-type]
            self.where[peer] = None if isinstance(result, Rejection) else room_id
        elif kind == "signal":
            _, peer, to = operation
            room = self.where.get(peer)  # type: ignore[call-overload]
            if room is not None:
                self.apply(room, c.Signal(peer, '{"x":1}', to, self.now))  # type: ignore[arg-type]
        elif kind == "leave":
            peer = operation[1]
            room = self.where.get(peer)  # type: ignore[call-overload]
            if room is not None:
                self.where[peer] = None  # type: ignore[index]
                self.apply(room, c.Leave(peer, "left", self.now))  # type: ignore[arg-type]
        elif kind == "drop":
            self.drop(operation[1])  # type: ignore[arg-type]
        elif kind == "grace":
            peer = operation[1]
            for room_id, state in self.rooms.items():
                member = state.members.get(peer)  # type: ignore[call-overload]
                if member is not None and not member.attached:
                    self.apply(room_id, c.GraceOver(peer, member.detached_seq, self.now))  # type: ignore[arg-type]
        elif kind == "resume" and self.order:
            _, peer, idx, good = operation
            assert isinstance(peer, str) and isinstance(idx, int)
            room_id = self.order[idx % len(self.order)]
            member = self.rooms[room_id].members.get(peer)
            if member is not None and not member.attached and self.where.get(peer) is None:
                token = f"t-{peer}" if good else "wrong"
                seq = self.rooms[room_id].seq
                result = self.apply(room_id, c.Resume(peer, token, seq, self.now))
                if not isinstance(result, Rejection):
                    self.where[peer] = room_id
        elif kind == "tick":
            self.now += float(operation[1])  # type: ignore[arg-type]
            for room_id in list(self.order):
                result = self.apply(room_id, c.Expire(self.now))
                if result and not isinstance(result, Rejection):
                    for peer, room in self.where.items():
                        if room == room_id:
                            self.where[peer] = None


def check_invariants(world: World) -> None:
    for peer in PEERS:
        homes = [r for r, s in world.rooms.items() if peer in s.members]
        assert len(homes) <= 1, f"{peer} is in rooms {homes}"
        current = world.where.get(peer)
        if current is not None:
            member = world.rooms[current].members.get(peer)
            assert member is not None and member.attached
    for room_id, state in world.rooms.items():
        seqs = [e.seq for e in world.appended[room_id]]
        assert seqs == list(range(1, len(seqs) + 1))
        assert state.seq == len(seqs)
        snapshot, events = asyncio.run(world.journal.load(room_id))
        assert replay(snapshot, events) == state, "journal replay must rebuild the live state"
        fresh = RoomState(room_id, POLICY, last_activity=world.rooms[room_id].last_activity)
        assert replay(fresh, world.appended[room_id]).members == state.members


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=60), st.integers(1, 8), st.sampled_from([300, 1000, 1 << 20]))
def test_invariants_hold_for_random_command_sequences(
    ops: list[tuple[object, ...]], journal_window: int, total_budget: int
) -> None:
    journal = MemoryJournal(
        max_events=journal_window, max_bytes=1 << 20, max_total_bytes=total_budget
    )
    world = World(journal)
    for operation in ops:
        world.step(operation)
        check_invariants(world)
        assert journal.total_bytes <= total_budget
