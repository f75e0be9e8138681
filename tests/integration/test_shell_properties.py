"""The real server shell under random clients, random crashes and a failing journal.

Hypothesis drives real ``Connection`` objects on a real ``Hub`` (supervisor, actors,
journal, delivery; ``tests/support/inproc.py``): clients create, join, signal, leave,
drop and resume at random, the actor's ``decide`` crashes at random, and the journal
fails appends (cleanly or after committing), creates, loads and reads at random. After every step
the rooms settle and the invariants of ``tests/support/invariants.py`` are checked
against the journal's complete record.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import signaling.core.room
import signaling.rooms.actor
from signaling.config import Settings
from signaling.core import commands as c
from signaling.core.room import Decision, RoomState
from signaling.transport.server import Hub
from tests.support import invariants
from tests.support.inproc import MemoryClient
from tests.support.journals import FaultyJournal

N = 4  # client slots: even ones speak v2, odd ones v1
create = st.tuples(st.just("create"), st.integers(0, N - 1))
join = st.tuples(st.just("join"), st.integers(0, N - 1), st.integers(0, 3))
signal = st.tuples(st.just("signal"), st.integers(0, N - 1), st.none() | st.integers(0, N - 1))
# Weighted towards the traffic that gives faults something to break.
step = st.one_of(
    create,
    join,
    join,
    signal,
    signal,
    signal,
    st.tuples(st.just("leave"), st.integers(0, N - 1)),
    st.tuples(st.just("drop"), st.integers(0, N - 1)),
    st.tuples(st.just("resume"), st.integers(0, N - 1), st.integers(0, N - 1), st.booleans()),
    st.tuples(st.just("crash"), st.integers(1, 3)),
    st.tuples(st.just("fail_append"), st.booleans()),
    st.tuples(st.just("fail_loads"), st.integers(1, 2)),
    st.tuples(st.just("fail_read"), st.just(1)),
    st.tuples(st.just("fail_create"), st.just(1)),
)


class World:
    def __init__(self, hub: Hub, journal: FaultyJournal) -> None:
        self.hub = hub
        self.journal = journal
        self.slots: list[MemoryClient | None] = [None] * N
        self.clients: list[MemoryClient] = []
        self.rooms: list[str] = []
        self.crash_in = 0  # decide raises on the crash_in-th call from now (0: never)
        self.resumed: set[int] = set()  # clients whose peer id moved (exactness skipped)
        self.counter = 0

    def decide(self, state: RoomState, command: c.Command) -> Decision:
        if self.crash_in:
            self.crash_in -= 1
            if self.crash_in == 0:
                raise RuntimeError("injected crash")
        return REAL_DECIDE(state, command)

    def client(self, i: int) -> MemoryClient | None:
        client = self.slots[i]
        return None if client is None or client.closed else client

    def acting(self, i: int) -> MemoryClient:
        """The client in slot ``i``; a new connection if there is none (or it closed)."""
        return self.client(i) or self.open(i, i % 2 == 0)

    def open(self, i: int, v2: bool) -> MemoryClient:
        client = MemoryClient(self.hub, v2)
        self.slots[i] = client
        self.clients.append(client)
        return client

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "crash":
            self.crash_in = op[1]
        elif kind == "fail_append":
            self.journal.fail_appends = 1
            self.journal.ambiguous_appends = op[1]
        elif kind == "fail_loads":
            self.journal.fail_loads = op[1]
        elif kind == "fail_read":
            self.journal.fail_reads = 1
        elif kind == "fail_create":
            self.journal.fail_creates = 1
        elif (client := self.acting(op[1])) is None:
            return
        elif kind == "create":
            client.send({"type": "create"})
        elif kind == "join":
            room = self.rooms[op[2] % len(self.rooms)] if self.rooms else "1000"
            client.send({"type": "join", "roomId": room})
        elif kind == "signal":
            self.counter += 1
            msg: dict[str, Any] = {"type": "signal", "payload": f"s{self.counter}"}
            target = self.client(op[2]) if op[2] is not None else None
            if target is not None and client.v2:
                msg["to"] = target.conn.peer_id
            client.send(msg)
        elif kind == "leave":
            client.send({"type": "leave"})
        elif kind == "drop":
            client.drop()
        elif kind == "resume":
            self.resume(client, op[2], op[3])

    def resume(self, old: MemoryClient, slot: int, good_token: bool) -> None:
        """A new v2 connection in ``slot`` takes over ``old``'s place, if it had one."""
        entered = [m for m in old.messages() if m["type"] in ("room_created", "room_joined")]
        if not old.v2 or not entered or (self.client(slot) is not None and slot != 0):
            return
        last = entered[-1]
        seq = max((m["seq"] for m in old.messages() if isinstance(m.get("seq"), int)), default=0)
        new = self.open(slot, True)
        new.send(
            {
                "type": "resume",
                "roomId": last["roomId"],
                "peerId": last["myId"],
                "resumeToken": last["resumeToken"] if good_token else "wrong",
                "lastSeq": seq,
            }
        )
        self.resumed.update({id(old), id(new)})

    async def settle(self) -> None:
        """Run the loop until every room waits for work with an empty mailbox."""
        stable = 0
        for _ in range(5000):
            await asyncio.sleep(0)
            rooms = self.hub.supervisor.rooms.values()
            if all(h.mailbox.idle for h in rooms) and not self.hub._dirty:
                stable += 1
                if stable > 5:
                    break
            else:
                stable = 0
        else:
            raise AssertionError("the rooms never settled")
        for client in self.clients:
            for msg in client.messages():
                if (
                    msg["type"] in ("room_created", "room_joined")
                    and msg["roomId"] not in self.rooms
                ):
                    self.rooms.append(msg["roomId"])

    def check(self) -> None:
        for client in self.clients:
            invariants.frames_are_journaled(self.journal, client)
        invariants.registry_follows_journal(self.hub, self.journal, self.clients)
        invariants.signals_reach_exactly_the_members(self.journal, self.clients, self.resumed)


REAL_DECIDE = signaling.core.room.decide


async def run(ops: list[tuple[Any, ...]]) -> None:
    journal = FaultyJournal(max_events=8)
    hub = Hub(Settings(port=0, metrics_port=0, max_members=3), journal=journal)
    hub.ready = True
    hub.supervisor.backoff = (0.0, 0.0)
    hub.supervisor.restart_attempts = 2
    world = World(hub, journal)
    with mock.patch.object(signaling.rooms.actor, "decide", world.decide):
        try:
            for op in ops:
                world.apply(op)
                await world.settle()
                world.check()
        finally:
            await hub.supervisor.close()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=5, max_size=50))
def test_the_journal_is_the_one_membership_truth(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(run(ops))
